"""Background work, run by `manage.py db_worker` (django-tasks-db: the database is the queue)."""

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.tasks import task
from django.utils import timezone

from calls.models import CallLog, Campaign, WorkerHeartbeat
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
            calls = self.campaign.claim_calls(len(slots))
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
            call.record_submission(SendResult(status=CallLog.Status.ERROR, error=str(exc)))
            return True
        sent_at = self.now()
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
        call.record_submission(result, sent_at=sent_at)
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
