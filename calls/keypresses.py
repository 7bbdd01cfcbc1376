"""The keys customers press. After a flow call is answered, its keys (the status API's `dtmf`)
are looked up once, a few calls a run at a pace well inside the provider's limit for GETs; a
flow names its keys; a campaign's results count its answered calls by the first key pressed; a
flow's stop key puts the number on the do-not-call list."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Substr
from django.utils import timezone

from calls.models import CallLog, Campaign
from calls.models.calls import KEYPRESS_TRIES
from calls.models.records import record_keypresses
from calls.provider.base import Gateway, GatewayError, RateLimited
from calls.vocabulary import KEYPAD, provider_key
from calls.webhooks import MalformedDelivery, parse_delivery

logger = logging.getLogger(__name__)
# A minute after the outcome the provider's record of the call is complete.
SETTLE = timedelta(minutes=1)
# Asked about within a week of the outcome; older calls are given up (the provider keeps its
# call logs 60 days: a person can look there).
WINDOW = timedelta(days=7)
# When a try that failed (timeout, 5xx, unreadable answer) is followed by the next.
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))
BATCH = 20  # look-ups a run, so a run takes seconds and other tasks get the worker soon
FAILURES_IN_A_ROW = 2  # a provider failing this often in a run is left alone until the next


def waiting() -> QuerySet[CallLog]:
    """Answered flow calls whose keys are still to be looked up (read on a small partial index)."""
    return CallLog.objects.filter(
        status=CallLog.Status.ANSWERED,
        flow__isnull=False,
        keypresses_at=None,
        keypress_tries__lt=KEYPRESS_TRIES,
    )


def due(now: datetime) -> QuerySet[CallLog]:
    return (
        waiting()
        .filter(Q(keypress_retry_at=None) | Q(keypress_retry_at__lte=now))
        .filter(outcome_at__lte=now - SETTLE, outcome_at__gte=now - WINDOW)
        .exclude(provider_key="")
        .select_related("flow")
        .order_by("outcome_at")
    )


@dataclass
class LookupRun:
    looked_up: int = 0
    stored: int = 0
    failed: int = 0
    more: bool = False  # a full batch: others may be waiting
    wait: float | None = None  # seconds the provider asked us to wait (429)
    problems: list[str] = field(default_factory=list)


def fetch_keypresses(
    gateway: Gateway,
    *,
    now: Callable[[], datetime] = timezone.now,
    sleep: Callable[[float], None] = time.sleep,
) -> LookupRun:
    """One run: at most BATCH look-ups, spaced to OBD_KEYPRESS_LOOKUPS_PER_MINUTE; stops early
    when the provider asks us to wait or keeps failing."""
    run = LookupRun()
    start = now()
    given_up = waiting().filter(outcome_at__lt=start - WINDOW).update(keypress_tries=KEYPRESS_TRIES)
    if given_up:
        logger.info("keypresses not looked up, calls too old count=%s", given_up)
    calls = list(due(start)[:BATCH])
    gap = 60 / settings.OBD_KEYPRESS_LOOKUPS_PER_MINUTE
    failures = 0
    for index, call in enumerate(calls):
        if index:
            sleep(gap)
        try:
            stored = look_up(call, gateway, now())
        except RateLimited as exc:
            run.wait = exc.retry_after or settings.OBD_RATE_LIMIT_WAIT_SECONDS
            return run
        except GatewayError as exc:
            stored = None
            run.problems.append(f"{call}: {exc}")
        run.looked_up += 1
        run.stored += bool(stored)
        failures = failures + 1 if stored is None else 0
        run.failed += stored is None
        if failures >= FAILURES_IN_A_ROW:
            return run
    run.more = len(calls) == BATCH
    return run


def look_up(call: CallLog, gateway: Gateway, now: datetime) -> bool | None:
    """Ask the status API about one call: True when its keys were stored, False when another
    process had it, None when this try failed (tried again later, a bounded number of times).
    Raises RateLimited (the try given back) and GatewayError (the try counted)."""
    tries = call.keypress_tries
    # The try is counted before asking: one process asks per try, and a crash still counts.
    claimed = CallLog.objects.filter(pk=call.pk, keypresses_at=None, keypress_tries=tries).update(
        keypress_tries=tries + 1, keypress_retry_at=now + BACKOFF[min(tries, len(BACKOFF) - 1)]
    )
    if not claimed:
        return False
    try:
        body = gateway.call_status(id=call.provider_id)
    except RateLimited as exc:
        # Refused before it was looked at: not a try.
        CallLog.objects.filter(pk=call.pk, keypress_tries=tries + 1).update(
            keypress_tries=tries,
            keypress_retry_at=now + timedelta(seconds=exc.retry_after or 60),
        )
        raise
    keys = keys_in(body, call)
    if keys is None:
        logger.warning("keypresses answer unreadable call=%s try=%s", call.pk, tries + 1)
        return None
    return record_keypresses(call, keys, now)


def keys_in(body: bytes, call: CallLog) -> str | None:
    """The keys the status answer gives for this call ("" for none); None when the answer is
    not the call's settled record (garbage, no rows, another call's, not finished)."""
    try:
        delivery = parse_delivery(content_type="application/json", body=body)
    except MalformedDelivery:
        return None
    if delivery.call_id and provider_key(delivery.call_id) != call.provider_key:
        return None
    if not delivery.outcome or any(p.startswith("dtmf") for p in delivery.problems):
        return None
    return delivery.dtmf


def describe(call: CallLog) -> str:
    """The call page's words for its keys."""
    if call.keypresses_at is not None:
        if not call.keypresses:
            return "None pressed"
        first = call.flow.choice_words(call.keypresses[0]) if call.flow else call.keypresses[0]
        return first if len(call.keypresses) == 1 else f"{call.keypresses} (first: {first})"
    if call.keypress_tries >= KEYPRESS_TRIES:
        return "Could not be looked up at the provider"
    return "Being looked up at the provider…"


@dataclass(frozen=True)
class Choice:
    key: str  # "" for calls where no key was pressed
    name: str  # what the flow calls the key ("" for a key it does not name)
    words: str
    calls: int
    share: float  # percent of the answered calls whose keys are known
    stops: bool = False

    @property
    def bar(self) -> int:
        """The bar's length in the chart: 400 units for every call."""
        return round(4 * self.share)


@dataclass(frozen=True)
class KeypressResults:
    answered: int
    known: int
    waiting: int
    choices: list[Choice]

    @property
    def given_up(self) -> int:
        return self.answered - self.known - self.waiting

    @property
    def chart_height(self) -> int:
        return 28 * len(self.choices) + 4


def campaign_results(campaign: Campaign) -> KeypressResults | None:
    """The campaign's answered calls by the first key pressed: each key the flow names (even
    if nobody pressed it), then other keys, then no key. None for an audio campaign."""
    flow = campaign.flow
    if flow is None:
        return None
    answered = campaign.calls.filter(status=CallLog.Status.ANSWERED)
    totals = answered.aggregate(
        answered=Count("id"),
        known=Count("id", filter=Q(keypresses_at__isnull=False)),
        waiting=Count("id", filter=Q(keypresses_at=None, keypress_tries__lt=KEYPRESS_TRIES)),
    )
    counts = dict(
        answered.filter(keypresses_at__isnull=False)
        .annotate(first=Substr("keypresses", 1, 1))
        .order_by()
        .values_list("first")
        .annotate(n=Count("id"))
        .values_list("first", "n")
    )
    named = [key for key in KEYPAD if key in flow.choices]
    others = [key for key in KEYPAD if key in counts and key not in flow.choices]
    known = totals["known"]

    def choice(key: str, name: str, words: str) -> Choice:
        n = counts.get(key, 0)
        share = round(100 * n / known, 1) if known else 0.0
        return Choice(key, name, words, n, share, stops=bool(key) and key == flow.stop_key)

    choices = [
        choice(key, str(flow.choices.get(key, "")), flow.choice_words(key))
        for key in [*named, *others]
    ]
    choices.append(choice("", "No key pressed", "No key pressed"))
    return KeypressResults(totals["answered"], known, totals["waiting"], choices)
