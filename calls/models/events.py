"""One delivery about a call (CallEvent): stored raw in one INSERT, then applied in batches.

The webhook door only stores (`CallEvent.objects.store`) and answers; the deliveries worker
(`manage.py apply_deliveries`) claims what waits (`apply_waiting`), parses it, matches the whole
batch with one query and applies the outcomes under the calls' row locks. Sandbox outcomes and
status look-ups store and apply at once (`ingest`), through the same batch code."""

import hashlib
import logging
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from functools import cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import OperationalError, connection, models, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import BooleanField, Exists, OuterRef, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from calls.models.bulk import prepared_cursor, rows_update, this_connection, update_rows
from calls.models.calls import CallLog
from calls.models.life import DOUBTFUL_TIME, Decided, Told
from calls.models.records import DoNotCall, record_keypresses
from calls.models.submissions import ANSWER_LATE
from calls.vocabulary import IN_FLIGHT, MAX_ID, provider_key, provider_words
from calls.webhooks import Delivery, MalformedDelivery, parse_delivery

logger = logging.getLogger(__name__)

# PostgreSQL text cannot hold NUL: a body is stored with U+FFFD in its place, and flagged.
NUL_STAND_IN = "\ufffd"
NUL_STORED = "NUL bytes in the body, stored as U+FFFD"
NOT_UTF8 = "the body is not UTF-8 text"
# Deliveries applied per transaction: big enough to amortise the statements, small enough that
# the calls it locks are held for milliseconds.
BATCH = 500
# Deliveries per transaction on SQLite (see apply_waiting): a few milliseconds of the one writer.
SQLITE_SLICE = 25
# How often a delivery's INSERT asks SQLite for the write lock while another writer holds it.
TURN_POLL = 0.0005
# How far before its last look the engine looks, and how often, for deliveries that came before
# their call's answer (`queue_again_learned`): twice as long as an answer may take before it
# looks for itself, so a sender's and an engine's clocks some minutes apart still meet.
EARLY_WINDOW = 2 * ANSWER_LATE
LOOK_EARLY_EVERY = timedelta(seconds=1)
# The condition of the indexes of those deliveries, in the statement's own text: planned once
# for any values (prepared; every SQLite statement), a statement uses a partial index only if it
# says the index's condition term by term, not as a value bound later.
KEYED = RawSQL("""NOT ("calls_callevent"."provider_key" = '')""", (), BooleanField())


class CallEventQuerySet(models.QuerySet["CallEvent"]):
    def store(
        self,
        *,
        source: str,
        body: bytes,
        content_type: str = "application/json",
        query: str = "",
        method: str = "POST",
    ) -> int:
        """Store a delivery as it came, in one statement, and return its event's id.

        An exact re-delivery (same source, method, query and body) is counted on the stored
        event and queued to be applied again: idempotent, and it finds a call that learned its
        id since."""
        key = hashlib.sha256(f"{source}\n{method}\n{query}\n".encode() + body).hexdigest()
        try:
            text = body.decode()
            unreadable = ""
        except UnicodeDecodeError:
            text, unreadable = body.decode(errors="replace"), NOT_UTF8
        db = this_connection()
        now = db.ops.adapt_datetimefield_value(timezone.now())
        # The values in STORED_COLUMNS' order, ready for the database: on the door's hot path a
        # model instance and its fields' preparation cost more than the INSERT's own Python.
        values = [
            source,
            now,
            method,
            content_type[:200],
            query,
            text.replace("\x00", NUL_STAND_IN),
            key,
            unreadable,
            NUL_STORED if "\x00" in text else "",
            # Nothing to apply in a body that is not text: it is kept, flagged, never parsed.
            now if unreadable else None,
        ]
        with prepared_cursor(db) as cursor:
            if db.vendor == "sqlite" and not db.in_atomic_block:
                row = _upsert_in_turn(cursor, values)
            else:
                cursor.execute(_upsert_sql(db.vendor), values)
                row = cursor.fetchone()
        assert row is not None
        return int(row[0])

    def ingest(self, *, source: str, body: bytes) -> "CallEvent":
        """Store a delivery and apply it now: for deliveries made inside a worker already."""
        pk = self.store(source=source, body=body)
        apply_events(self.filter(pk=pk))
        return self.get(pk=pk)

    def waiting(self) -> "CallEventQuerySet":
        return self.filter(applied_at=None)

    def queue_again_learned(
        self, *, since: datetime | None = None, keys: Collection[str] | None = None
    ) -> int:
        """Queue again the deliveries that found no call but carry an id a call has now, to
        be matched at the worker's next pass; returns how many. Only those received `since`,
        or carrying one of `keys` (ids some calls just learned), when given.

        A delivery can come before the answer to the POST that placed its call (the provider
        was quick, our worker slow). The engine looks every LOOK_EARLY_EVERY, back EARLY_WINDOW
        before its last look, and further back in parts (`look_back_learned`); an answer
        stored later than ANSWER_LATE looks for its own id, and a batch for the ids it taught
        calls (found by number) or left unmatched."""
        early = self._early()
        if since is not None:
            early = early.filter(received_at__gte=since)
        if keys is not None:
            # The ids a call has, first: deliveries about a call not ours that share one id
            # stay unmatched for ever, and would all be read again at every look.
            known = CallLog.objects.filter(provider_key__in=keys).values_list("provider_key")
            keys = {key for (key,) in known}
            if not keys:
                return 0
            early = early.filter(provider_key__in=keys)
        return self._queue_again(early)

    def look_back_learned(
        self, *, before: "Reached | None", until: datetime | None, part: int
    ) -> "Reached | None":
        """Queue again, as `queue_again_learned`, those of the `part` newest early deliveries
        received before `before` (from the newest, when None) and not before `until` (back to
        the first, when None) whose id a call has now, the newest first (a recent one is the
        likeliest to match). Returns the part's last delivery, for the next part to go on
        before, or None when this part was the last."""
        early = self._early()
        if until is not None:
            early = early.filter(received_at__gte=until)
        if before is not None:
            early = _before(early, before)
        # The part's oldest delivery, where the next part begins (none: this part is the last).
        last = early.order_by("-received_at", "-pk").values_list("received_at", "pk")
        at = next((Reached(*row) for row in last[part - 1 : part]), None)
        if at is not None:
            early = early.filter(received_at__gte=at.received_at).exclude(
                received_at=at.received_at, pk__lt=at.pk
            )
        self._queue_again(early)
        return at

    def _early(self) -> "CallEventQuerySet":
        """Deliveries with an id, applied without finding a call."""
        return self.filter(KEYED, call=None, parse_error="").exclude(applied_at=None)

    def _queue_again(self, early: "CallEventQuerySet") -> int:
        # Found before written, so the usual look (none found) writes nothing: on SQLite it
        # takes no write lock.
        learned = early.filter(
            Exists(CallLog.objects.filter(provider_key=OuterRef("provider_key")))
        )
        found = list(learned.order_by().values_list("pk", flat=True))
        if not found:
            return 0
        return self.filter(pk__in=found, call=None).exclude(applied_at=None).update(applied_at=None)


class Reached(NamedTuple):
    """Where a look back for early deliveries goes on from: the last delivery it read."""

    received_at: datetime
    pk: int


def _before(early: CallEventQuerySet, at: Reached) -> CallEventQuerySet:
    """Those received before `at`, by time then id: deliveries received at one instant may
    fall in two parts (by id), and none is skipped."""
    return early.filter(received_at__lte=at.received_at).exclude(
        received_at=at.received_at, pk__gte=at.pk
    )


# What a stored delivery brings, in the order `store` passes the values.
STORED_COLUMNS = ["source", "received_at", "method", "content_type", "query", "body"]
STORED_COLUMNS += ["dedupe_key", "parse_error", "problems", "applied_at"]
# The rest of a new row: the model's defaults, written into the statement (`call` and
# `started_at` are left out: NULL). A test holds them equal to the model's.
STORED_DEFAULTS = {
    "parsed": "'{}'",
    "provider_id": "''",
    "provider_key": "''",
    "raw_status": "''",
    "outcome": "''",
    "deliveries": "1",
}


def _upsert_in_turn(cursor: CursorWrapper, values: list[str | None]) -> tuple[int]:
    """SQLite: the INSERT asks for the one write lock every TURN_POLL seconds until it has it.
    SQLite's own wait looks again only after 1, 3, 8, 18 ms…, and so misses the moment the
    deliveries worker lets go between two slices (apply_waiting): waits of 18 ms behind a
    slice of 9, where this waits the slice and half a millisecond."""
    timeout = cursor.db.settings_dict["OPTIONS"].get("timeout", 5)
    cursor.execute("PRAGMA busy_timeout = 0")
    give_up = time.monotonic() + timeout
    try:
        while True:
            try:
                cursor.execute(_upsert_sql("sqlite"), values)
                return cursor.fetchone()  # type: ignore[no-any-return]
            except OperationalError as exc:
                busy = getattr(exc.__cause__, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() > give_up:
                    raise
            time.sleep(TURN_POLL)
    finally:
        cursor.execute(f"PRAGMA busy_timeout = {round(timeout * 1000)}")


@cache
def _upsert_sql(vendor: str) -> str:
    """INSERT … ON CONFLICT (dedupe_key): PostgreSQL and SQLite both say it so. Every name here
    is the model's own, quoted; every value from outside is a parameter."""
    q = connection.ops.quote_name
    table = q(str(CallEvent._meta.db_table))
    columns = [q(c) for c in [*STORED_COLUMNS, *STORED_DEFAULTS]]
    values = ["%s"] * len(STORED_COLUMNS) + list(STORED_DEFAULTS.values())
    was = f"{table}.{q('applied_at')}"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(values)}) "  # noqa: S608  # nosec B608
        f"ON CONFLICT ({q('dedupe_key')}) DO UPDATE SET "
        f"{q('deliveries')} = {table}.{q('deliveries')} + 1, "
        f"{q('applied_at')} = CASE WHEN {table}.{q('parse_error')} = '' THEN NULL ELSE {was} END "
        f"RETURNING {q('id')}"
    )


class CallEvent(models.Model):
    """One delivery about a call: a webhook, a sandbox outcome or a status look-up. Stored raw."""

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        SANDBOX = "sandbox", "Sandbox"
        RECONCILE = "reconcile", "Status look-up"

    # Indexed only where set (see Meta): the webhook's INSERT, the hot path, skips the index.
    call = models.ForeignKey(
        CallLog,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        db_index=False,
    )
    source = models.CharField(max_length=16, choices=Source, default=Source.WEBHOOK)
    # Not indexed: the door's INSERT is the hot path, and ids follow the order of arrival.
    received_at = models.DateTimeField(default=timezone.now)
    method = models.CharField(max_length=8, blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    query = models.TextField(blank=True)
    body = models.TextField(blank=True)
    parsed = models.JSONField(default=dict, blank=True)
    parse_error = models.TextField(blank=True)
    problems = models.TextField(
        blank=True, help_text="Values that came but did not fit, so were not applied."
    )
    provider_id = models.CharField(max_length=MAX_ID, blank=True)
    # The id without its legacy `:n` suffix: how a call that learns its id finds its deliveries.
    provider_key = models.CharField(max_length=MAX_ID, blank=True, editable=False)
    raw_status = models.CharField(max_length=32, blank=True)
    outcome = models.CharField(max_length=16, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    dedupe_key = models.CharField(max_length=64, unique=True, editable=False)
    deliveries = models.PositiveIntegerField(
        default=1, help_text="How many times this exact delivery came."
    )
    applied_at = models.DateTimeField(
        null=True, blank=True, help_text="When the deliveries worker read it (empty: waiting)."
    )

    objects = CallEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]  # newest first: ids are given in the order deliveries arrive
        verbose_name = "call event"
        # Partial indexes: a delivery is stored with no call and no id yet, so the webhook's
        # INSERT writes only the indexes it needs (id, dedupe_key, the queue).
        indexes = [
            # The worker's queue: only what waits is in it, so claiming stays one short read.
            models.Index(fields=["id"], condition=Q(applied_at=None), name="event_waiting"),
            models.Index(fields=["call"], condition=Q(call__isnull=False), name="event_call"),
            models.Index(
                fields=["provider_id"], condition=~Q(provider_id=""), name="event_provider_id"
            ),
            # Deliveries with an id and no call (`queue_again_learned`), by their id and by
            # when they came.
            models.Index(
                fields=["provider_key"],
                condition=Q(call=None) & ~Q(provider_key=""),
                name="event_unmatched_key",
            ),
            models.Index(
                fields=["received_at"],
                condition=Q(call=None) & ~Q(provider_key=""),
                name="event_unmatched",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.raw_status or self.parse_error[:30] or '?'} #{self.pk}"

    @property
    def is_matched(self) -> bool:
        return self.call_id is not None

    @property
    def status_words(self) -> str:
        return provider_words(self.raw_status)

    def read(self) -> Delivery | None:
        """Parse the stored delivery and note what it says (or why it cannot be read)."""
        try:
            delivery = parse_delivery(
                content_type=self.content_type,
                body=self.body.encode(),
                query=self.query,
                tz=ZoneInfo(settings.OBD_PROVIDER_TIMEZONE),
            )
        except MalformedDelivery as exc:
            self.parse_error = str(exc)
            return None
        self.parsed = delivery.as_json()
        self.problems = "\n".join(filter(None, [*self.problems.splitlines(), *delivery.problems]))
        self.provider_id = (delivery.ids or [""])[0][:MAX_ID]
        self.provider_key = provider_key(self.provider_id)
        self.raw_status = delivery.status[:32]
        self.outcome = delivery.outcome
        self.started_at = delivery.start_at
        return delivery


def apply_waiting(limit: int = BATCH) -> int:
    """Claim up to `limit` waiting deliveries and apply them; returns how many were claimed.
    On PostgreSQL several workers share the queue: each skips the rows another holds.

    SQLite has one writer and no queue for it: the door's INSERT waits for the whole transaction
    in hand (asking every half millisecond, `_upsert_in_turn`). There the batch is applied in
    slices of a few milliseconds, the lock is taken for a slice's writes only (`_apply_slice`),
    and after each it is left free as long as it was held, so a waiting INSERT gets in."""
    if connection.vendor != "sqlite":
        with transaction.atomic():
            batch = list(
                CallEvent.objects.waiting()
                .select_for_update(skip_locked=True)
                .order_by("id")
                .defer("parsed")[:limit]
            )
            read = _read(batch, waiting=True)
            taken = _apply(batch, read)
        _committed(taken, read)
        return len(batch)
    applied = 0
    while applied < limit:
        claimed, held = _apply_slice(wanted := min(SQLITE_SLICE, limit - applied))
        applied += claimed
        if claimed < wanted:
            break  # nothing more waits: the caller pauses anyway
        time.sleep(held)
    return applied


def _apply_slice(limit: int) -> tuple[int, float]:
    """SQLite: read the slice, parse and match it, decide its outcomes and build the writes
    without the write lock (WAL readers never wait), then take the lock for the writes alone.
    The events' write takes only those still waiting: what another worker applied meanwhile is
    left to it, and the slice's outcomes are then decided again under the lock, as they are
    when a call changed meanwhile (`CallLog.objects.take_outcomes`).
    Returns how many it applied, and the seconds the lock was held."""
    claimed = list(CallEvent.objects.waiting().order_by("id").defer("parsed")[:limit])
    if not claimed:
        return 0, 0.0
    read = _read(claimed, waiting=True)
    told = _told(claimed, read.deliveries)
    batch = {event.pk: (event.call_id, event.started_at) for event in claimed}
    decided = CallLog.objects.decide_outcomes(told, batch) if told else None
    began = time.monotonic()
    with transaction.atomic():
        taken = _apply(claimed, read, decided)
    held = time.monotonic() - began
    _committed(taken, read)
    return len(taken), held


def apply_events(events: "models.QuerySet[CallEvent]") -> None:
    """Apply these events now (again, if they were): the path for one event made in a worker
    and for an administrator's "match again"."""
    with transaction.atomic():
        claimed = list(events.select_for_update().order_by("id"))
        read = _read(claimed, waiting=False)
        taken = _apply(claimed, read)
    _committed(taken, read)


def _committed(events: list[CallEvent], read: "Read") -> None:
    """Once a batch is committed (not under SQLite's write lock), a look at the deliveries
    that found no call with the ids this batch taught calls (found by number: the early ones
    are queued again) or left unmatched (a call learned one meanwhile: queued again, however
    old the delivery); and a line per delivery."""
    unmatched = {event.provider_key for event in events if event.call_id is None}
    if keys := (read.teaching | unmatched) - {""}:
        CallEvent.objects.queue_again_learned(keys=keys)
    for event in events:
        logger.info(
            "delivery applied event=%s call=%s status=%s%s",
            event.pk,
            event.call_id or "-",
            event.raw_status or "-",
            f" error={event.parse_error!r}" if event.parse_error else "",
        )


class Read(NamedTuple):
    """A batch read by `_read`: what each readable event says, the events' own write, and the
    ids of those found by number: each teaches its call its id (`life._take`)."""

    deliveries: dict[int, Delivery]
    write: Callable[[], set[int]]
    teaching: set[str]


# An event's columns that reading it sets.
READ_COLUMNS = [
    "call",
    "applied_at",
    "parsed",
    "parse_error",
    "problems",
    "provider_id",
    "provider_key",
    "raw_status",
    "outcome",
    "started_at",
]


def _read(events: list[CallEvent], *, waiting: bool) -> Read:
    """Parse a batch and match it to its calls, in memory and reads only (no lock needed):
    each event's fields are set as it will be written, and the statement that writes them is
    built. `waiting`: it writes only the events still waiting then (compare-and-set)."""
    now = timezone.now()
    deliveries: dict[int, Delivery] = {}
    for event in events:
        event.applied_at, event.parsed = now, {}  # `parsed` is not read back: it is rewritten
        if not event.parse_error:
            delivery = event.read()
            if delivery is not None:
                deliveries[event.pk] = delivery
    matched, by_number = _match(events, deliveries)
    for event in events:
        event.call_id = matched.get(event.pk, event.call_id)
    write = rows_update(events, READ_COLUMNS, while_null="applied_at" if waiting else "")
    teaching = {event.provider_key for event in events if event.pk in by_number}
    return Read(deliveries, write, teaching)


def _apply(events: list[CallEvent], read: Read, decided: Decided | None = None) -> list[CallEvent]:
    """Write a batch read by `_read` and apply its outcomes, inside the caller's transaction:
    few statements whatever its size (the events' write built by `_read`, one locked read of
    the calls, one of their start times, the calls' bulk write; with the outcomes `decided`
    before the lock, one read of the calls and the calls' write). The calls decide and write
    their own outcomes (`CallLog.objects.take_outcomes`). Returns the events written; those with
    an id and no call wait for `queue_again_learned`."""
    written = read.write()
    if len(written) < len(events):
        decided = None  # another worker applied some of them: decided again, under the lock
    events = [event for event in events if event.pk in written]
    deliveries = read.deliveries
    for event in events:
        delivery = deliveries.get(event.pk)
        if delivery is None:
            continue
        if delivery.unsubscribed:
            # An opt-out (voice:unsubscription) is about a number, not a call.
            DoNotCall.objects.record_opt_outs(
                delivery.unsubscribed,
                source=DoNotCall.Source.WEBHOOK,
                note=f"provider webhook, event {event.pk}",
            )
    told = _told(events, deliveries)
    if not told:
        return events
    # The calls decide and write their own outcomes, under their locks; what they did not
    # believe is flagged on its event.
    doubtful = CallLog.objects.take_outcomes(told, decided)
    flagged = [event for event in events if event.pk in doubtful]
    for event in flagged:
        event.problems = "\n".join(filter(None, [event.problems, DOUBTFUL_TIME]))
    update_rows(flagged, ["problems"])
    # Keys pressed, when a delivery tells them (a look-up fetches them otherwise).
    keys = {
        call_id: news.delivery.dtmf
        for call_id, all_news in told.items()
        for news in all_news
        if news.delivery.dtmf
    }
    if keys:  # else its queryset costs Python to find it needs no query
        for call in CallLog.objects.select_related("flow").filter(pk__in=keys, keypresses_at=None):
            record_keypresses(call, keys[call.pk], timezone.now())
    return events


def _told(events: list[CallEvent], deliveries: dict[int, Delivery]) -> dict[int, list[Told]]:
    """Each matched call's news in the batch, by call id."""
    told: defaultdict[int, list[Told]] = defaultdict(list)
    for event in events:
        if event.call_id is not None and event.pk in deliveries:
            told[event.call_id].append(Told(event.pk, deliveries[event.pk], event.received_at))
    return told


def _match(
    events: list[CallEvent], deliveries: dict[int, Delivery]
) -> tuple[dict[int, int], set[int]]:
    """Each event's call, for the whole batch: one read by provider id (either id form), then one
    for the number + bridge fallback of those that carry no known id (also returned: found by
    number)."""
    keys = {
        event.pk: [provider_key(i) for i in deliveries[event.pk].ids]
        for event in events
        if event.pk in deliveries and event.call_id is None
    }
    by_key: dict[str, int] = {}
    wanted = {key for ks in keys.values() for key in ks}
    if wanted:
        # Oldest first, so the newest call with a key wins.
        for key, pk in (
            CallLog.objects.filter(provider_key__in=wanted)
            .order_by("id")
            .values_list("provider_key", "id")
        ):
            by_key[key] = pk
    found = {
        pk: call
        for pk, ks in keys.items()
        if (call := next((by_key[k] for k in ks if k in by_key), None)) is not None
    }
    latest = _by_number([deliveries[pk] for pk in keys if pk not in found])
    by_number = set()
    for pk in keys:
        delivery = deliveries[pk]
        if pk not in found and (delivery.to, delivery.bridge) in latest:
            found[pk] = latest[delivery.to, delivery.bridge]
            by_number.add(pk)
    return found, by_number


def _by_number(deliveries: list[Delivery]) -> dict[tuple[str, str], int]:
    """For each (number, bridge): the latest call sent there that is still waiting for its outcome
    and does not know its provider id yet. A delivery never lands on a call whose known id
    differs from its own."""
    numbers = {d.to for d in deliveries if d.to and d.bridge}
    if not numbers:
        return {}
    latest: dict[tuple[str, str], int] = {}
    for to, bridge, pk in (
        CallLog.objects.filter(
            to__in=numbers,
            status__in=IN_FLIGHT,
            provider_key="",
            submitted_at__gte=timezone.now() - timedelta(days=1),
        )
        .order_by("submitted_at")
        .values_list("to", "bridge__number", "id")
    ):
        latest[to, bridge] = pk
    return latest


def oldest_waiting(now: datetime | None = None) -> timedelta | None:
    """How long the oldest waiting delivery has waited (for /healthz), None when none waits."""
    first = CallEvent.objects.waiting().order_by("id").values_list("received_at", flat=True)[:1]
    return ((now or timezone.now()) - first[0]) if first else None
