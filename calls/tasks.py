"""Background work, run by `manage.py db_worker` (django-tasks-db: the database is the queue)."""

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.tasks import Task, TaskResultStatus, task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from calls.models import CallLog, Campaign, WorkerHeartbeat
from calls.models.campaigns import recover_abandoned_rows
from calls.provider.base import Gateway, SendResult
from calls.provider.configured import get_gateway
from calls.reconcile import reconcile_waiting

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 30


class Dispatcher:
    """Sends a running campaign's waiting calls at its pace. Several dispatchers (on any number
    of workers) may run for one campaign: each claims rows alone and all share one token bucket.

    `now` and `sleep` are injectable so tests can run the pace on a fake clock."""

    def __init__(
        self,
        campaign: Campaign,
        gateway: Gateway,
        *,
        now: Callable[[], datetime] = timezone.now,
        sleep: Callable[[float], None] = time.sleep,
        budget: timedelta | None = None,
    ) -> None:
        self.campaign = campaign
        self.gateway = gateway
        self.now = now
        self.sleep = sleep
        self.budget = budget or timedelta(seconds=settings.OBD_DISPATCH_BUDGET_SECONDS)
        # About a second of calls per batch (at most 20): few rows are held claimed at a time.
        self.batch = max(1, min(20, int(campaign.pace)))

    def run(self) -> str:
        """Send until the campaign stops, runs out of rows, leaves its window or the budget
        ends; returns which, so the task knows whether and when to come back."""
        started = self.now()
        while self.now() - started < self.budget:
            if not self.campaign.in_window(self.now()):
                return "window"
            # A few slots and rows at a time: the bucket and the queue are touched once a batch.
            slots = self.campaign.take_slots(self.now(), self.batch)
            if not slots:
                return "stopped"
            # Held until a while after the batch's last slot: long enough for a live worker,
            # short enough that a dead one's rows come back soon.
            hold = slots[-1] - self.now() + timedelta(seconds=settings.OBD_CLAIM_LEASE_SECONDS)
            calls = self.campaign.claim_calls(len(slots), hold)
            if not calls:
                self.campaign.finish_if_done()
                return "empty"
            for index, (call, slot) in enumerate(zip(calls, slots, strict=False)):
                stop = self._wait_for(slot)
                if stop or not self.send(call):
                    self.campaign.release(calls[index + (0 if stop else 1) :])
                    if stop:
                        return stop
                    break  # rate limited: the rest of the batch waits for the provider's time
        return "budget"

    def _wait_for(self, slot: datetime) -> str | None:
        """Sleep until the slot; then why not to send, if the campaign changed meanwhile."""
        if slot > (now := self.now()):
            self.sleep((slot - now).total_seconds())
            if not self.campaign.in_window(self.now()):
                return "window"  # the window closed while this worker waited
        # Checked before every send, so a pause or cancel stops the very next call.
        if not Campaign.objects.filter(
            pk=self.campaign.pk, status=Campaign.Status.RUNNING
        ).exists():
            return "stopped"
        return None

    def send(self, call: CallLog) -> bool:
        """Send one claimed row; False when the provider asked us to slow down (429)."""
        try:
            variables = call.variables_in_clear()
        except ValueError as exc:
            call.record_submission(SendResult(status=CallLog.Status.ERROR, error=str(exc)), {})
            return True
        if not call.begin_sending(self.now()):
            # Its lease ran out and another worker took it, or the campaign was canceled.
            logger.info("campaign=%s call=%s no longer ours to send", self.campaign.pk, call.pk)
            return True
        result = self.gateway.send(call.provider_payload(variables))
        if result.http_status == 429:
            # Refused before it was placed: back in the queue, and the campaign waits as told.
            self.campaign.release([call])
            wait = (
                result.retry_after
                if result.retry_after is not None
                else settings.OBD_RATE_LIMIT_WAIT_SECONDS
            )
            self.campaign.slow_down(self.now() + timedelta(seconds=wait))
            logger.warning("campaign=%s provider rate limit: waiting %ss", self.campaign.pk, wait)
            return False
        call.record_submission(result, variables)
        return True


@task(queue_name="campaigns")
def dispatch_campaign(campaign_id: int) -> str:
    campaign = Campaign.objects.get(pk=campaign_id)
    reason = Dispatcher(campaign, get_gateway()).run()
    if reason == "budget":
        dispatch_campaign.enqueue(campaign_id)  # let other work through, then go on
    elif reason == "window":
        opens = campaign.window_opens_after(timezone.now())
        dispatch_campaign.using(run_after=opens).enqueue(campaign_id)
    return reason


def start_dispatchers(campaign: Campaign) -> None:
    for _ in range(settings.OBD_CAMPAIGN_DISPATCHERS):
        dispatch_campaign.enqueue(campaign.pk)


@task
def reconcile_calls_periodically() -> int:
    """Ask the status API about calls without an outcome; runs again after the interval."""
    later = timezone.now() + timedelta(minutes=settings.OBD_RECONCILE_EVERY_MINUTES)
    reconcile_calls_periodically.using(run_after=later).enqueue()  # first: a crash keeps the chain
    return reconcile_waiting(settings.OBD_RECONCILE_AFTER_MINUTES)


@task
def worker_heartbeat() -> None:
    """Proves a worker is taking tasks (see /healthz); queues its next beat."""
    worker_heartbeat.using(
        run_after=timezone.now() + timedelta(seconds=HEARTBEAT_SECONDS)
    ).enqueue()
    WorkerHeartbeat.beat()


@task
def sweep_abandoned_work() -> dict[str, int]:
    """What a worker killed mid-task leaves behind, healed: rows it held (back to the queue, or
    `unknown` when their POST may have begun), its tasks stuck RUNNING (the queue never learns
    that a worker died), periodic chains it broke, running campaigns nobody dispatches any more."""
    now = timezone.now()
    sweep_abandoned_work.using(
        run_after=now + timedelta(seconds=settings.OBD_SWEEP_EVERY_SECONDS)
    ).enqueue()
    requeued, unknown = recover_abandoned_rows(now)
    lost = _fail_lost_tasks(now)
    chains = sum(ensure_periodic(periodic) for periodic in PERIODIC)
    revived = _revive_campaigns()
    return {
        "requeued": requeued,
        "unknown": unknown,
        "lost_tasks": lost,
        "chains": chains,
        "campaigns": revived,
    }


def _fail_lost_tasks(now: datetime) -> int:
    """Tasks RUNNING far longer than they can run lost their worker: marked FAILED, so that
    `ensure_periodic` and `_revive_campaigns` start them again."""
    lost = 0
    for periodic, limit in _running_limits().items():
        lost += DBTaskResult.objects.filter(
            task_path=periodic.module_path,
            status=TaskResultStatus.RUNNING,
            started_at__lt=now - limit,
        ).update(
            status=TaskResultStatus.FAILED,
            finished_at=now,
            exception_class_path="calls.tasks.WorkerLost",
            traceback="The worker running this task stopped without finishing it (killed?).",
        )
    if lost:
        logger.warning("tasks whose worker was lost marked failed count=%s", lost)
    return lost


def _running_limits() -> dict[Task[..., Any], timedelta]:
    """How long each kind of task may run at most before its worker is presumed dead."""
    # A live dispatcher may overrun its budget by a slow batch; being wrong here is safe (the
    # rows' leases and compare-and-set keep every call to one POST), so recovery can be quick.
    dispatch = settings.OBD_DISPATCH_BUDGET_SECONDS + settings.OBD_CLAIM_LEASE_SECONDS
    return {
        dispatch_campaign: timedelta(seconds=dispatch),
        sweep_abandoned_work: timedelta(minutes=10),
        worker_heartbeat: timedelta(minutes=10),
        reconcile_calls_periodically: timedelta(hours=1),
    }


def ensure_periodic(periodic: Task[..., Any]) -> bool:
    """Queue a periodic task unless one is queued or running (a running one queues its own next
    run: queuing another would start a second chain). True when it had to be queued."""
    waiting = DBTaskResult.objects.filter(
        task_path=periodic.module_path,
        status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING],
    )
    if waiting.exists():
        return False
    periodic.enqueue()
    return True


def _revive_campaigns() -> int:
    """Running campaigns with no dispatch task queued or running: finished if nothing is left
    to send, else dispatched again (rows recovered from a dead worker are sent by the new one)."""
    dispatching = {
        args["args"][0]
        for args in DBTaskResult.objects.filter(
            task_path=dispatch_campaign.module_path,
            status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING],
        ).values_list("args_kwargs", flat=True)
    }
    revived = 0
    for campaign in Campaign.objects.filter(status=Campaign.Status.RUNNING).exclude(
        pk__in=dispatching
    ):
        if not campaign.finish_if_done():
            start_dispatchers(campaign)
            revived += 1
            logger.warning("campaign=%s had no dispatcher: dispatching again", campaign.pk)
    return revived


PERIODIC = (reconcile_calls_periodically, worker_heartbeat, sweep_abandoned_work)
