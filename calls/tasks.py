"""Sending a running campaign at its pace (`Dispatcher`); its tasks and their seats are in
calls/engine/dispatch.py."""

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from calls.engine import sends
from calls.models import CallLog, Campaign, Notice
from calls.models.retries import allowed_to_send, schedule_retries
from calls.notifications import tell_supervisors
from calls.provider.base import Gateway

logger = logging.getLogger(__name__)
RATE_LIMITED = "rate limited"  # a row the provider refused with a 429: the batch waits
# Calls whose slots fall within this span go together, at the last one's slot: a worker that
# wakes once for several sends finds its caches (and its database backend's) still warm. One
# that woke for every send at 100/s spent half as much CPU again on each. Never before a slot,
# so going together never puts more sends in a second than the pace; at 20/s or slower every
# call still goes alone.
TOGETHER = timedelta(milliseconds=50)


def sending_times(slots: Sequence[datetime], together: timedelta = TOGETHER) -> list[datetime]:
    """When each slot's call goes: the slots in runs spanning less than `together` from their
    first, each run at its last slot."""
    times: list[datetime] = []
    run: list[datetime] = []
    for slot in slots:
        if run and slot - run[0] >= together:
            times += [run[-1]] * len(run)
            run = []
        run.append(slot)
    return times + run[-1:] * len(run)


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
            slots = self.campaign.take_slots(self.now(), self.batch, kept_behind=TOGETHER)
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
            times = sending_times(slots[: len(calls)])
            for index, (call, when) in enumerate(zip(calls, times, strict=True)):
                if stop := self._wait_for(when) or self.send(call):
                    # The rest of the batch goes back to the queue (a 429's row went already).
                    self.campaign.release(calls[index + (stop == RATE_LIMITED) :])
                    if stop != RATE_LIMITED:
                        return stop
                    break  # the rest of the batch waits for the provider's time
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

    def _wait_for(self, when: datetime) -> str | None:
        """Sleep until `when`; then why not to send, if the campaign changed meanwhile."""
        if when > (now := self.now()):
            self.sleep((when - now).total_seconds())
            if not self.campaign.in_window(self.now()):
                return "window"  # the window closed while this worker waited
            if self.campaign.end_if_past(self.now()):
                return "ended"  # so did the campaign
        return None

    def send(self, call: CallLog) -> str | None:
        """Send one claimed row; why not, when the campaign no longer runs ("stopped": a pause
        or stop holds the very next call) or the provider asked us to slow down (a 429)."""
        sent = sends.send(
            call,
            self.gateway,
            now=self.now(),
            may_retry=self.campaign.may_follow(call.attempt_number),
            hold_if_rate_limited=True,
            campaign_running=True,
        )
        if sent is None:
            if not Campaign.objects.filter(
                pk=self.campaign.pk, status=Campaign.Status.RUNNING
            ).exists():
                return "stopped"
            # Its lease ran out and another worker took it.
            logger.info("campaign=%s call=%s no longer ours to send", self.campaign.pk, call.pk)
            return None
        if sent.result.http_status == 429:
            # Refused before it was placed: back in the queue, and the campaign waits as told.
            self.campaign.release([call])
            wait = sent.result.retry_after
            wait = settings.OBD_RATE_LIMIT_WAIT_SECONDS if wait is None else wait
            self.campaign.slow_down(self.now() + timedelta(seconds=wait))
            logger.warning("campaign=%s provider rate limit: waiting %ss", self.campaign.pk, wait)
            return RATE_LIMITED
        if sent.asked:
            self._watch_provider(sent)
        return None

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
