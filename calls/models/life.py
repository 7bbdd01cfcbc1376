"""A call's life in one place: which status may follow which, who may make the move, and the
model's own methods that make it (CallLog's queryset; the send's methods are on CallLog).

Every move is a compare-and-set on the table (`move`) or is decided under the rows' locks (or
decided before and found unchanged under them) and written in the same transaction
(`take_outcomes`), so a late or duplicate event never undoes a later one; a move the table does
not allow is refused, logged, and changes nothing. Nothing else writes a call's `status`."""

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import batched
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q

from calls.models.bulk import rows_update
from calls.models.callbacks import EventType
from calls.models.outbox import heard, record_outcomes, record_withdrawn
from calls.vocabulary import (
    IN_FLIGHT,
    MAX_ID,
    OUTCOMES,
    SETTLED,
    SUBMISSION_RESULTS,
    CallStatus,
    provider_key,
)
from calls.webhooks import Delivery

if TYPE_CHECKING:
    from calls.models.calls import CallLog

logger = logging.getLogger(__name__)


class Mover(StrEnum):
    """Who moves a call from one status to another."""

    SUBMISSION = "submission"  # the POST's answer
    OUTCOME = "outcome"  # a webhook, sandbox delivery or status look-up saying what happened
    SWEEPER = "sweeper"  # the worker holding the row died after its POST may have begun
    RETRY = "retry"  # a person sends again a call that never left
    CANCEL = "cancel"  # a person stopped the campaign, or canceled a call placed for later
    # The campaign's policy withdraws a row not sent: its end time passed, or a retry it no
    # longer allows (the number answered meanwhile, or is on the do-not-call list now).
    POLICY = "policy"


S = CallStatus
# The call's state machine: for each mover, the statuses it may move a call from, and to.
TRANSITIONS: dict[Mover, dict[CallStatus, frozenset[CallStatus]]] = {
    # The answer of the one POST; from `unknown` too, when the sweeper gave up on a slow worker.
    Mover.SUBMISSION: {S.PENDING: SUBMISSION_RESULTS, S.UNKNOWN: SUBMISSION_RESULTS},
    # An outcome may arrive before the POST's answer, and later attempts follow earlier ones
    # (which outcome wins among outcomes is the latest-attempt rule in `_decides`).
    Mover.OUTCOME: {status: OUTCOMES for status in (*IN_FLIGHT, *OUTCOMES)},
    Mover.SWEEPER: {S.PENDING: frozenset({S.UNKNOWN})},
    Mover.RETRY: {S.ERROR: frozenset({S.PENDING})},
    # A row never sent is withdrawn, not `canceled`: that is an outcome (the caller hung up).
    Mover.CANCEL: {S.PENDING: frozenset({S.WITHDRAWN})},
    Mover.POLICY: {S.PENDING: frozenset({S.WITHDRAWN})},
}


def allowed_from(mover: Mover, to: str) -> list[CallStatus]:
    """The statuses `mover` may move a call to `to` from."""
    return [status for status, targets in TRANSITIONS[mover].items() if to in targets]


# The calls columns an outcome can change (read under the lock, written back in one statement).
OUTCOME_COLUMNS = [
    "status",
    "provider_status",
    "provider_id",
    "provider_key",
    "started_at",
    "ended_at",
    "duration",
    "recording_url",
    "attempts",
    "outcome_at",
]
# What an outcome is decided on and told with: those columns, and the call's send and owners.
DECIDED_ON = [*OUTCOME_COLUMNS, "submitted_at", "to", "campaign", "api_key"]
# A provider time further than this from the call's own submission (a delivery dated 2099) is
# not believed: flagged, and it does not decide which attempt is the latest.
TIME_DOUBT = timedelta(days=1)
DOUBTFUL_TIME = (
    "its start time is more than a day from the call's submission: not used to order attempts"
)


@dataclass(frozen=True)
class Told:
    """One delivery's news for a call, as the deliveries worker read it."""

    event_id: int
    delivery: Delivery
    received_at: datetime


class CallLogQuerySet(models.QuerySet["CallLog"]):
    def move(self, mover: Mover, to: CallStatus, **fields: object) -> int:
        """Move every call here that the table lets `mover` move to `to`; the others stay.
        A move that settles calls (withdrawn) is told to the endpoints hearing `call.settled`."""
        movable = self.filter(status__in=allowed_from(mover, to))
        if to in SETTLED and heard(EventType.CALL_SETTLED):
            moved = self._move_told(movable, to, fields)
        else:
            moved = movable.update(status=to, **fields)
        if not moved:
            logger.info("call move refused or none to make mover=%s to=%s", mover, to)
        return moved

    def _move_told(
        self, movable: "CallLogQuerySet", to: CallStatus, fields: dict[str, object]
    ) -> int:
        """The move, with the calls it moves read under their locks (in id order, as every
        batch locks them) so that each is told, in the same transaction."""
        with transaction.atomic():
            calls = list(movable.select_for_update().order_by("pk"))
            for chunk in batched(calls, 500):  # SQLite's cap on a statement's parameters
                self.model.objects.filter(pk__in=[call.pk for call in chunk]).update(
                    status=to, **fields
                )
            for call in calls:
                call.status = to
                for name, value in fields.items():
                    setattr(call, name, value)
            record_withdrawn(calls)
        return len(calls)

    def claim(
        self,
        limit: int,
        until: datetime,
        now: datetime,
        *,
        order: tuple[str, ...] = ("id",),
        keep: Callable[[list["CallLog"]], list["CallLog"]] | None = None,
    ) -> tuple[int, list["CallLog"]]:
        """Lease up to `limit` of these calls whose POST has not begun until `until`, for this
        worker alone: rows another live worker holds are skipped, not waited for; a lease that
        ran out (its worker died) is free again. `keep` picks, under the rows' locks, those to
        lease (the others it may have put off). Returns how many were found, and those leased.
        A leased call is still sent at most once: see `CallLog.begin_sending`."""
        rows = list(
            self.filter(status=CallStatus.PENDING, submitted_at=None)
            .filter(Q(lease_until=None) | Q(lease_until__lt=now))
            .select_for_update(skip_locked=True)
            .order_by(*order)[:limit]
        )
        leased = keep(rows) if keep else rows
        self.model.objects.filter(pk__in=[c.pk for c in leased]).update(lease_until=until)
        for call in leased:
            call.lease_until = until
        return len(rows), leased

    def release(self) -> int:
        """Claimed calls not sent go back to the queue: their lease, and the mark of a POST
        refused before it was placed (a 429), are given up. Calls past `pending` stay."""
        return self.filter(status=CallStatus.PENDING).update(submitted_at=None, lease_until=None)

    def recover_abandoned(self, now: datetime) -> tuple[int, int]:
        """Rows a dead worker (or web process) held: those whose POST never began go back to
        the queue; those whose POST began and never got an answer recorded become `unknown`, to
        be settled by their webhook or a status look-up, and are never sent again blindly.
        Returns (requeued, unknown)."""
        requeued = self.filter(
            status=CallStatus.PENDING, submitted_at=None, lease_until__lt=now
        ).update(lease_until=None)
        grace = timedelta(seconds=settings.OBD_SEND_GRACE_SECONDS)
        # Moved only when some are still pending: a move that moves none says so in the log,
        # and the sweeper runs every few seconds.
        maybe_sent = self.filter(status=CallStatus.PENDING, submitted_at__lt=now - grace)
        unknown = (
            maybe_sent.move(
                Mover.SWEEPER,
                CallStatus.UNKNOWN,
                lease_until=None,
                sealed_variables="",
                error="The process sending this call stopped before the provider's answer was "
                "recorded. The call may or may not have been placed, so it is not sent again; "
                "its webhook or a status look-up settles it.",
            )
            if maybe_sent.exists()
            else 0
        )
        if requeued or unknown:
            logger.warning("recovered abandoned rows requeued=%s unknown=%s", requeued, unknown)
        return requeued, unknown

    def take_outcomes(
        self, told: dict[int, list[Told]], decided: "Decided | None" = None
    ) -> list[int]:
        """The deliveries worker's batch: each call's news (by call id), decided and written
        under the calls' row locks, inside the caller's transaction, in a few statements.
        Safe for duplicate, concurrent and out-of-order deliveries: the latest attempt by start
        time decides, and an answered call stays answered. Returns the events whose provider
        time was not believed (`TIME_DOUBT`), for the caller to flag.
        `decided`: the same news decided before the lock was taken (`decide_outcomes`), written
        as it is if the calls still hold what it was decided on, else decided again here."""
        if decided is None or not decided.still_holds():
            # Locked in id order: two batches that share calls wait for each other, never deadlock.
            calls = list(
                self.model.objects.select_for_update()
                .filter(pk__in=told)
                .order_by("pk")
                .only(*DECIDED_ON)
            )
            decided = _decide(calls, told, _attempts(calls))
        decided.write()
        record_outcomes(decided.calls, decided.before)
        for line in decided.refused:
            logger.info("call outcome refused call=%s status=%s outcome=%s event=%s", *line)
        return decided.doubtful

    def decide_outcomes(
        self, told: dict[int, list[Told]], batch: dict[int, tuple[int | None, datetime | None]]
    ) -> "Decided":
        """The news decided before any lock is taken, from the calls and the start times stored
        as they are now, with the batch's own events (`batch`: each one's call and start, as its
        write will store them) in place of what is stored of them. On SQLite `take_outcomes`
        writes it if the calls, read again, still hold what it was decided on (elsewhere it
        decides again under the rows' locks): SQLite's deliveries worker holds the one write
        lock the webhook door waits for, and WAL readers never wait."""
        look = _look(sorted(told), list(batch))
        # Read first: a change made between it and the calls' read shows as a change then.
        seen = look()
        calls = list(self.model.objects.filter(pk__in=told).order_by("pk").only(*DECIDED_ON))
        return _decide(calls, told, _attempts(calls, batch), seen, look)


@dataclass(frozen=True)
class Decided:
    """A batch's outcomes decided, and the write that stores them (built, not yet run)."""

    calls: "list[CallLog]"
    before: dict[int, str]  # each call's status until then
    doubtful: list[int]  # the events whose provider time was not believed
    refused: list[tuple[int, str, str, int]]  # outcomes the table refused: logged once written
    write: Callable[[], set[Any]]
    # Decided without the lock: the calls' columns as they were read, and how to read them again.
    seen: list[tuple[Any, ...]] | None
    look: Callable[[], list[tuple[Any, ...]]] | None

    def still_holds(self) -> bool:
        """Decided without the lock: whether the calls, read again, hold what it was decided on
        (any change made since, by anyone, and it is decided again). Only where the caller's
        transaction holds the whole database (SQLite): a PostgreSQL read that waits for a row's
        lock sees that row's newest version but the other tables as they were before the wait
        (READ COMMITTED), so a start another batch applied meanwhile would not show."""
        has_row_locks = connection.features.has_select_for_update
        return self.look is not None and not has_row_locks and self.look() == self.seen


def _decide(
    calls: "list[CallLog]",
    told: dict[int, list[Told]],
    attempts: Counter[int],
    seen: list[tuple[Any, ...]] | None = None,
    look: Callable[[], list[tuple[Any, ...]]] | None = None,
) -> Decided:
    """Each call's news taken into it in memory, in the order the deliveries came, and the
    calls' write built (`seen`, `look`: decided without the lock, see `Decided`)."""
    before = {call.pk: call.status for call in calls}
    doubtful: list[int] = []
    refused: list[tuple[int, str, str, int]] = []
    for call in calls:
        call.attempts = max(attempts.get(call.pk, 0), 1)
        for news in sorted(told[call.pk], key=lambda n: n.event_id):
            if not _take(call, news, refused):
                doubtful.append(news.event_id)
    write = rows_update(calls, OUTCOME_COLUMNS)
    return Decided(calls, before, doubtful, refused, write, seen, look)


def _look(ids: list[int], batch: list[int]) -> Callable[[], list[tuple[Any, ...]]]:
    """The calls' columns an outcome is decided on, as stored, and how many of their events
    other than the `batch` tell a start: one statement, built now. The count catches a start
    another process applied meanwhile that changed no column (`attempts` is at least 1 before
    any start is known)."""
    calls, events = (apps.get_model("calls", name)._meta for name in ("CallLog", "CallEvent"))
    q = connection.ops.quote_name
    names = []
    for name in DECIDED_ON:
        field = calls.get_field(name)
        assert isinstance(field, models.Field)  # a column, not a reverse relation
        names.append(q(str(field.column)))
    table, key = q(str(calls.db_table)), q(str(calls.pk.column))
    others = f" AND e.{q('id')} NOT IN ({', '.join(['%s'] * len(batch))})" if batch else ""
    starts = f"(SELECT COUNT(*) FROM {q(str(events.db_table))} e WHERE e.{q('call_id')} = {table}.{key} AND e.{q('started_at')} IS NOT NULL{others})"  # noqa: S608  # nosec B608 (as below)
    holders = ", ".join(["%s"] * len(ids))
    sql = f"SELECT {key}, {', '.join(names)}, {starts} FROM {table} WHERE {key} IN ({holders}) ORDER BY {key}"  # noqa: S608  # nosec B608 (the models' own names; the ids are parameters)

    def look() -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(sql, [*batch, *ids])
            return list(cursor.fetchall())

    return look


def _attempts(
    calls: "list[CallLog]", batch: dict[int, tuple[int | None, datetime | None]] | None = None
) -> Counter[int]:
    """Each distinct believable start time is one attempt (retries with `interval`), counted
    from the stored events (under the calls' locks, so order and concurrency cannot skew it;
    or before the lock, with `batch` in place of what is stored of the batch's events)."""
    sent = {call.pk: call.submitted_at for call in calls}
    events = apps.get_model("calls", "CallEvent").objects.filter(call_id__in=sent)
    if batch:  # not on the locked path: its ORM building runs under the lock
        events = events.exclude(pk__in=batch)
    stored = (
        events.exclude(started_at=None)
        .values_list("call_id", "started_at")
        .order_by()  # no ordering column in the SELECT, where it would split the DISTINCT
        .distinct()
    )
    # In UTC, as stored (see `_same`).
    mine = {(c, s.astimezone(UTC)) for c, s in (batch or {}).values() if c in sent and s}
    starts = {*stored, *mine}
    return Counter(call_id for call_id, start in starts if _believed(sent[call_id], start))


def _believed(sent: datetime | None, start: datetime | None) -> bool:
    """Whether the provider's start time of an attempt is believed for a call sent then."""
    return sent is None or start is None or abs(start - sent) <= TIME_DOUBT


def _take(call: "CallLog", news: Told, refused: list[tuple[int, str, str, int]]) -> bool:
    """Take one attempt's outcome into `call`, in memory (an outcome the table refuses goes to
    `refused`). False when its provider time was not believed."""
    delivery = news.delivery
    sent, start = call.submitted_at, delivery.start_at
    believed = _believed(sent, start)
    if not call.provider_id and delivery.ids:
        # Found by number after a timeout: learn its id so later deliveries match directly.
        call.provider_id = delivery.ids[0][:MAX_ID]
        call.provider_key = provider_key(call.provider_id)
    if not delivery.outcome:
        return believed
    if call.status not in allowed_from(Mover.OUTCOME, delivery.outcome):
        refused.append((call.pk, call.status, delivery.outcome, news.event_id))
        return believed
    if not _decides(call, delivery, believed):
        return believed
    details: dict[str, object] = {
        "started_at": delivery.start_at,
        "ended_at": delivery.end_at,
        "duration": delivery.duration,
        "recording_url": delivery.recording_url,
    }
    if not believed:  # its times would pin the call: later attempts would never be "later"
        details |= {"started_at": None, "ended_at": None}
    # Another attempt brings all of its own details; the same attempt told again (or told
    # without a start we believe) keeps what is known wherever this delivery is silent.
    if not believed or delivery.start_at is None or _same(delivery.start_at, call.started_at):
        details = {k: v for k, v in details.items() if v not in (None, "")}
    changes = {
        "status": delivery.outcome,
        "provider_status": delivery.status,
        "outcome_at": news.received_at,
        **details,
    }
    for name, value in changes.items():
        setattr(call, name, value)
    return believed


def _same(one: datetime | None, other: datetime | None) -> bool:
    """Whether two times are the same instant, compared in UTC: in a clock change's repeated
    hour, a time in the provider's zone is never equal to the same instant in another zone."""
    return one is not None and other is not None and one.astimezone(UTC) == other.astimezone(UTC)


def _decides(call: "CallLog", delivery: Delivery, believed: bool) -> bool:
    """Whether this outcome replaces the call's: the latest attempt by start time, answered
    never replaced; news whose time is not believed only fills in a call that has none (or
    tells that it was answered)."""
    if not call.has_outcome:
        return True
    answered = delivery.outcome == S.ANSWERED
    if not believed:
        return answered and call.status != S.ANSWERED
    new_start, old_start = delivery.start_at, call.started_at
    later = new_start is None or old_start is None or new_start >= old_start
    if call.status == S.ANSWERED:
        return answered and later
    return answered or later
