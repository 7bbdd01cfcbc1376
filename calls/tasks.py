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

from calls.engine import sends
from calls.engine.imports import resume_stalled_imports
from calls.keypresses import LookupRun, fetch_keypresses
from calls.models import CallLog, Campaign, Notice, WorkerHeartbeat
from calls.models.campaigns import recover_abandoned_rows
from calls.models.events import apply_waiting, oldest_waiting
from calls.models.retries import allowed_to_send, schedule_retries, wipe_ended_campaigns_secrets
from calls.notifications import check_notices_periodically, tell_supervisors
from calls.optouts import sync_optouts_periodically
from calls.provider.base import Gateway
from calls.provider.configured import get_gateway
from calls.reconcile import reconcile_waiting
from calls.rollups import fold_tallies_periodically
from calls.schedules import queue_overdue_calls

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
        # When to come back after "later": the next row's hours or retry, or an outcome's.
        self.resume_at: datetime | None = None

    def run(self) -> str:
        """Send until the campaign stops, runs out of rows, leaves its window or the budget
        ends, or its rows all wait (for their hours, a retry interval, outcomes that may be
        retried: "later", see `resume_at`); returns which, so the task knows whether and when
        to come back."""
        started = self.now()
        schedule_retries(self.campaign, self.now())
        while self.now() - started < self.budget:
            if self.campaign.end_if_past(self.now()):
                return "ended"
            if not self.campaign.in_window(self.now()):
                return "window"
            # A few slots and rows at a time: the bucket and the queue are touched once a batch.
            slots = self.campaign.take_slots(self.now(), self.batch)
            if not slots:
                return "stopped"
            # Held until a while after the batch's last slot: long enough for a live worker,
            # short enough that a dead one's rows come back soon.
            hold = slots[-1] - self.now() + timedelta(seconds=settings.OBD_CLAIM_LEASE_SECONDS)
            calls = allowed_to_send(self.campaign.claim_calls(len(slots), hold, self.now()))
            if not calls:
                if schedule_retries(self.campaign, self.now()):
                    continue
                return self._nothing_to_send()
            for index, (call, slot) in enumerate(zip(calls, slots, strict=False)):
                stop = self._wait_for(slot)
                if stop or not self.send(call):
                    self.campaign.release(calls[index + (0 if stop else 1) :])
                    if stop:
                        return stop
                    break  # rate limited: the rest of the batch waits for the provider's time
        return "budget"

    def _nothing_to_send(self) -> str:
        """No row to send now: "empty" when the campaign is done or other workers hold the rest,
        "later" (at `resume_at`) when rows wait for their hours or retry interval, or calls
        whose outcome the policy may retry await it."""
        if self.campaign.finish_if_done():
            return "empty"
        now = self.now()
        due = self.campaign.next_due(after=now)
        awaiting = (
            self.campaign.retries
            and self.campaign.retry_candidates(include_in_flight=True).exists()
        )
        if due is None and not awaiting:
            return "empty"
        soon = now + timedelta(seconds=settings.OBD_SCHEDULE_EVERY_SECONDS)
        self.resume_at = min(due, soon) if due and awaiting else (due or soon)
        return "later"

    def _wait_for(self, slot: datetime) -> str | None:
        """Sleep until the slot; then why not to send, if the campaign changed meanwhile."""
        if slot > (now := self.now()):
            self.sleep((slot - now).total_seconds())
            if not self.campaign.in_window(self.now()):
                return "window"  # the window closed while this worker waited
            if self.campaign.end_if_past(self.now()):
                return "ended"  # so did the campaign
        # Checked before every send, so a pause or cancel stops the very next call.
        if not Campaign.objects.filter(
            pk=self.campaign.pk, status=Campaign.Status.RUNNING
        ).exists():
            return "stopped"
        return None

    def send(self, call: CallLog) -> bool:
        """Send one claimed row; False when the provider asked us to slow down (429)."""
        sent = sends.send(
            call,
            self.gateway,
            now=self.now(),
            may_retry=self.campaign.may_follow(call.attempt_number),
            hold_if_rate_limited=True,
        )
        if sent is None:
            # Its lease ran out and another worker took it, or the campaign was canceled.
            logger.info("campaign=%s call=%s no longer ours to send", self.campaign.pk, call.pk)
            return True
        if sent.result.http_status == 429:
            # Refused before it was placed: back in the queue, and the campaign waits as told.
            self.campaign.release([call])
            wait = sent.result.retry_after
            wait = settings.OBD_RATE_LIMIT_WAIT_SECONDS if wait is None else wait
            self.campaign.slow_down(self.now() + timedelta(seconds=wait))
            logger.warning("campaign=%s provider rate limit: waiting %ss", self.campaign.pk, wait)
            return False
        if sent.asked:
            self._watch_provider(sent)
        return True

    def _watch_provider(self, sent: sends.Sent) -> None:
        """The circuit breaker: a provider that stops answering (hung, unreachable, failing
        with 5xx) would turn row after row into `unknown`. After a few such sends in a row,
        counted for the campaign across its dispatchers, the campaign pauses itself, says why,
        and its supervisors are told; a person resumes it."""
        if not self.campaign.note_provider_answer(silent=sent.provider_silent):
            return
        logger.warning(
            "campaign=%s paused: the provider stopped answering (%s)",
            self.campaign.pk,
            sent.result.error,
        )
        tell_supervisors(
            Notice.Kind.CAMPAIGN_PAUSED,
            key=f"{self.campaign.pk}-{self.now():%Y%m%dT%H%M%S%f}",
            title=f"Campaign “{self.campaign.name}” paused itself: the provider is not answering",
            link=self.campaign.get_absolute_url(),
        )


@task(queue_name="campaigns")
def dispatch_campaign(campaign_id: int) -> str:
    campaign = Campaign.objects.get(pk=campaign_id)
    dispatcher = Dispatcher(campaign, get_gateway())
    reason = dispatcher.run()
    if reason == "later":
        dispatch_campaign.using(run_after=dispatcher.resume_at).enqueue(campaign_id)
    elif reason == "budget":
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
def fetch_keypresses_periodically() -> dict[str, int]:
    """Look up the keys pressed on answered flow calls, a batch a run. Comes back at the pace
    while more wait, when the provider said after a 429, else after the interval."""
    run = LookupRun()
    try:
        run = fetch_keypresses(get_gateway())
    finally:  # queued even when the run failed, so the chain goes on
        if run.wait is not None:
            delay = run.wait
        elif run.more:
            delay = 60 / settings.OBD_KEYPRESS_LOOKUPS_PER_MINUTE
        else:
            delay = 60 * settings.OBD_KEYPRESS_EVERY_MINUTES
        later = timezone.now() + timedelta(seconds=delay)
        fetch_keypresses_periodically.using(run_after=later).enqueue()
    for problem in run.problems:
        logger.warning("keypress look-up failed: %s", problem)
    return {"looked_up": run.looked_up, "stored": run.stored, "failed": run.failed}


@task
def run_schedules_periodically() -> dict[str, int]:
    """Scheduled work come due: campaigns to start or to end, retries to make (dispatchers make
    them too; this covers paused campaigns and dispatchers between runs), single calls whose
    send task was lost. Queues its next run first, so a crash keeps the chain."""
    now = timezone.now()
    later = now + timedelta(seconds=settings.OBD_SCHEDULE_EVERY_SECONDS)
    run_schedules_periodically.using(run_after=later).enqueue()
    begun = ended = retries = 0
    for campaign in Campaign.objects.filter(
        status__in=[Campaign.Status.SCHEDULED, Campaign.Status.RUNNING, Campaign.Status.PAUSED]
    ):
        if campaign.end_if_past(now):
            ended += 1
        elif campaign.begin_if_due(now):
            start_dispatchers(campaign)
            begun += 1
        elif campaign.status != Campaign.Status.SCHEDULED:
            retries += schedule_retries(campaign, now)
    wipe_ended_campaigns_secrets()
    queued = queue_overdue_calls(now)
    return {"begun": begun, "ended": ended, "retries": retries, "calls": queued}


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
    that a worker died), periodic chains it broke, running campaigns nobody dispatches any more,
    CSV imports nobody reads any more."""
    now = timezone.now()
    sweep_abandoned_work.using(
        run_after=now + timedelta(seconds=settings.OBD_SWEEP_EVERY_SECONDS)
    ).enqueue()
    requeued, unknown = recover_abandoned_rows(now)
    stranded = _apply_stranded_deliveries(now)
    lost = _fail_lost_tasks(now)
    chains = sum(ensure_periodic(periodic) for periodic in PERIODIC)
    revived = _revive_campaigns()
    imports = resume_stalled_imports()
    return {
        "requeued": requeued,
        "unknown": unknown,
        "deliveries": stranded,
        "lost_tasks": lost,
        "chains": chains,
        "campaigns": revived,
        "imports": imports,
    }


def _apply_stranded_deliveries(now: datetime) -> int:
    """Webhook deliveries left waiting a while: no deliveries worker is running (or it is far
    behind), so this worker applies them, and says so."""
    waited = oldest_waiting(now)
    if waited is None or waited < timedelta(seconds=settings.OBD_SWEEP_EVERY_SECONDS):
        return 0
    applied = 0
    while claimed := apply_waiting():
        applied += claimed
    logger.warning(
        "deliveries applied by the sweeper (is apply_deliveries running?) count=%s", applied
    )
    return applied


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
        run_schedules_periodically: timedelta(minutes=10),
        sync_optouts_periodically: timedelta(hours=1),
        check_notices_periodically: timedelta(minutes=10),
        fetch_keypresses_periodically: timedelta(minutes=10),
        fold_tallies_periodically: timedelta(minutes=10),
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


PERIODIC = (
    reconcile_calls_periodically,
    worker_heartbeat,
    sweep_abandoned_work,
    fetch_keypresses_periodically,
    sync_optouts_periodically,
    check_notices_periodically,
    run_schedules_periodically,
    fold_tallies_periodically,
)
