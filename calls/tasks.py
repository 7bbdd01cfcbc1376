"""Background work, run by `manage.py db_worker` (django-tasks-db: the database is the queue)."""

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.tasks import task
from django.utils import timezone

from calls.models import CallEvent, CallLog, Campaign, WorkerHeartbeat
from calls.provider import SendResult, get_gateway

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 30


@task
def deliver_sandbox_outcome(body: str) -> int:
    """The sandbox's webhook: the same ingest path a real delivery takes."""
    return CallEvent.objects.ingest(source=CallEvent.Source.SANDBOX, body=body.encode()).pk


class Dispatcher:
    """Sends a running campaign's waiting calls at its pace. Several dispatchers (on any number
    of workers) may run for one campaign: each claims rows alone and all share one token bucket.

    `now` and `sleep` are injectable so tests can run the pace on a fake clock."""

    def __init__(
        self,
        campaign: Campaign,
        gateway,
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

    def run(self) -> str:
        """Send until the campaign stops, runs out of rows, leaves its window or the budget
        ends; returns which, so the task knows whether and when to come back."""
        started = self.now()
        while self.now() - started < self.budget:
            now = self.now()
            if not self.campaign.in_window(now):
                return "window"
            slot = self.campaign.take_slot(now)
            if slot is None:
                return "stopped"
            if slot > now:
                self.sleep((slot - now).total_seconds())
            if not Campaign.objects.filter(
                pk=self.campaign.pk, status=Campaign.Status.RUNNING
            ).exists():
                return "stopped"  # paused or canceled while this worker waited for its slot
            if not self.campaign.in_window(self.now()):
                return "window"  # the window closed while this worker waited
            call = self.campaign.claim_next_call()
            if call is None:
                self.campaign.finish_if_done()
                return "empty"
            self.send(call)
        return "budget"

    def send(self, call: CallLog) -> None:
        try:
            variables = call.clear_variables()
        except ValueError as exc:
            call.record_submission(SendResult(status=CallLog.Status.ERROR, error=str(exc)))
            return
        result = self.gateway.send(call.provider_payload(variables))
        if result.http_status == 429:
            # Refused before it was placed: back in the queue, and the campaign waits as told.
            call.release()
            wait = (
                result.retry_after
                if result.retry_after is not None
                else settings.OBD_RATE_LIMIT_WAIT_SECONDS
            )
            self.campaign.slow_down(self.now() + timedelta(seconds=wait))
            logger.warning("campaign=%s provider rate limit: waiting %ss", self.campaign.pk, wait)
            return
        call.record_submission(result)


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
    from calls.reconcile import reconcile_waiting

    try:
        return reconcile_waiting(settings.OBD_RECONCILE_AFTER_MINUTES)
    finally:  # an unexpected failure must not end the chain
        later = timezone.now() + timedelta(minutes=settings.OBD_RECONCILE_EVERY_MINUTES)
        reconcile_calls_periodically.using(run_after=later).enqueue()


@task
def worker_heartbeat() -> None:
    """Proves a worker is taking tasks (see /healthz); queues its next beat."""
    WorkerHeartbeat.beat()
    worker_heartbeat.using(
        run_after=timezone.now() + timedelta(seconds=HEARTBEAT_SECONDS)
    ).enqueue()
