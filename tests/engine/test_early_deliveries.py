"""Deliveries that came before the answer to their call's POST (calls/models/events.py
`queue_again_learned`): no call has their id yet, so they are applied unmatched. The engine
looks for them every LOOK_EARLY_EVERY, back EARLY_WINDOW before its last look, and looks back
further in parts (`look_back_learned`): to the start from its first look, a day back once an
EARLY_WINDOW. It queues again those whose id a call has now; an answer stored later than
ANSWER_LATE after its POST began queues them itself, and so does a batch whose delivery found by
number taught a call its id. The send path makes no statement about deliveries."""

import json
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls.engine.clock import LOOK_BACK, Engine
from calls.engine.processes import Process
from calls.models import CallEvent, CallLog, WorkerHeartbeat, events
from calls.models.events import EARLY_WINDOW, LOOK_EARLY_EVERY, CallEventQuerySet, apply_waiting
from calls.models.submissions import ANSWER_LATE
from calls.provider.base import SendResult
from calls.vocabulary import provider_key
from tests.helpers.webhooks import CALL_ID, push

pytestmark = pytest.mark.django_db
# By id alone, as a provider may tell it: no number to find the call by.
BUSY = json.dumps({"id": CALL_ID, "status": "BUSY"}).encode()
SOMEONE_ELSES = json.dumps({"id": "not-one-of-ours", "status": "BUSY"}).encode()
# A status look-up's answer about the call, with its number: found by it, it teaches the id.
LOOKED_UP = json.dumps(push(status="BUSY")).encode()


class Clock:
    """The engine's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self) -> datetime:
        return self.now


def engine(clock: Clock) -> Engine:
    return Engine(Process(WorkerHeartbeat.Kind.DELIVERIES), jobs=(), now=clock)


def came_early(call: CallLog, began: datetime | None = None) -> None:
    """The call's POST begins, and a delivery about it comes before the answer: found no call."""
    assert call.begin_sending(began)
    CallEvent.objects.store(source="webhook", body=BUSY)
    assert apply_waiting() == 1
    assert CallEvent.objects.get(body=BUSY.decode()).call_id is None


def engine_running_and_early(make_call: Callable[..., CallLog]) -> tuple[CallLog, Clock, Engine]:
    """An engine running (its first look made), and a call whose delivery came early."""
    call = make_call(provider_id="", status="pending")
    clock = Clock()
    running = engine(clock)
    running.step()
    came_early(call)
    return call, clock, running


def answered(call: CallLog) -> list[str]:
    """The POST's answer (the id) stored; the statements it made."""
    with CaptureQueriesContext(connection) as made:
        call.record_submission(
            SendResult(status="queued", http_status=200, provider_id=CALL_ID, body="{}"), {}
        )
    return [query["sql"] for query in made]


def matched(call: CallLog) -> bool:
    call.refresh_from_db()
    return CallEvent.objects.get(body=BUSY.decode()).call_id == call.pk and call.status == "busy"


def test_the_engines_next_look_finds_it_and_its_outcome_is_applied(make_call):
    call = make_call(provider_id="", status="pending")
    clock = Clock()
    worker = engine(clock)
    worker.step()  # its first look: nothing yet
    CallEvent.objects.store(source="webhook", body=SOMEONE_ELSES)  # stays unmatched
    worker.step()
    came_early(call)

    made = answered(call)
    worker.step()  # within the same second: no look
    assert not matched(call)
    clock.now += LOOK_EARLY_EVERY
    worker.step()  # looks: queued again
    worker.step()  # applied

    assert not [sql for sql in made if "calls_callevent" in sql]
    assert matched(call)
    foreign = CallEvent.objects.get(body=SOMEONE_ELSES.decode())
    assert foreign.call_id is None and foreign.applied_at is not None  # looked at, left


def database_away(running: Engine, monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], None]:
    """The database away from `running` (its steps fail, and it goes on) until told back."""
    monkeypatch.setattr(running.backoff, "failed", lambda error: None)  # no pause, no closing

    def away(batch: int) -> int:
        raise OperationalError("server closed the connection unexpectedly")

    def set_away(is_away: bool) -> None:
        monkeypatch.setattr("calls.engine.clock.apply_waiting", away if is_away else apply_waiting)

    return set_away


@pytest.mark.parametrize("outage", [timedelta(minutes=5), timedelta(hours=26)])
def test_an_engine_held_up_by_a_database_outage_looks_back_from_its_last_look(
    make_call, monkeypatch, outage
):
    """The engine waits a database outage out and goes on (it never exits for one): its next
    look goes back from its last one, however long ago, not from now (nor only a day back)."""
    call, clock, running = engine_running_and_early(make_call)
    came = timezone.now() - EARLY_WINDOW + timedelta(minutes=1)  # just inside the last look's
    CallEvent.objects.filter(body=BUSY.decode()).update(received_at=came)
    answered(call)  # in time: no look of its own
    away = database_away(running, monkeypatch)

    windows: list[datetime] = []
    look = CallEventQuerySet.queue_again_learned

    def window(self: CallEventQuerySet, *, since: datetime) -> int:
        windows.append(since)
        return look(self, since=since)

    away(True)
    for _ in range(5):
        clock.now += outage / 5
        assert running.step() is False
    away(False)
    monkeypatch.setattr(CallEventQuerySet, "queue_again_learned", window)
    running.step()  # back: looks
    running.step()

    assert matched(call)
    # A gap longer than the window is looked back at in parts, not read in one statement.
    assert min(windows) >= clock.now - 2 * EARLY_WINDOW


def test_an_engine_whose_clock_was_set_back_waits_a_look_s_interval_not_as_long(monkeypatch):
    """Listening (PostgreSQL) with nothing to wake it, the engine waits until its next duty,
    reckoned on its clock: set back an hour, it still wakes within a look's interval."""
    waits: list[float] = []
    clock = Clock()
    running = engine(clock)
    running.step()
    monkeypatch.setattr(type(running.listener), "possible", True)
    monkeypatch.setattr(type(running.listener), "listening", True)
    monkeypatch.setattr(running.listener, "wait", lambda timeout: waits.append(timeout) or False)
    clock.now -= timedelta(hours=1)

    running.idle()

    assert waits == [LOOK_EARLY_EVERY.total_seconds()]


def test_a_look_by_ids_no_call_has_reads_no_delivery(make_call):
    """Deliveries about a call not ours may share one id (a provider's test calls) and stay
    unmatched for ever: a batch's look by the ids it left unmatched reads none of them."""
    CallEvent.objects.store(source="webhook", body=SOMEONE_ELSES)
    apply_waiting()

    with CaptureQueriesContext(connection) as made:
        assert CallEvent.objects.queue_again_learned(keys=["not-one-of-ours"]) == 0

    assert not [query for query in made if "calls_callevent" in query["sql"]]


@pytest.mark.parametrize(
    ("came", "later"),
    [
        (EARLY_WINDOW + timedelta(minutes=1), LOOK_EARLY_EVERY),  # each second: a window back
        (LOOK_BACK + timedelta(minutes=1), EARLY_WINDOW),  # each EARLY_WINDOW: a day back
    ],
)
def test_a_started_engine_looks_back_to_the_start_a_running_one_a_bounded_way(
    make_call, came, later
):
    """What a running engine looks at is bounded (deliveries about calls that are not ours stay
    unmatched for ever): each second, what came within EARLY_WINDOW of its last look; once an
    EARLY_WINDOW, what came within LOOK_BACK. A process's first look goes back to the start:
    one may have waited while no engine ran."""
    call, clock, running = engine_running_and_early(make_call)
    CallEvent.objects.filter(body=BUSY.decode()).update(received_at=timezone.now() - came)
    answered(call)

    clock.now += later
    running.step()
    running.step()
    assert not matched(call)
    started = engine(clock)
    started.step()
    started.step()

    assert matched(call)


def test_an_id_a_call_learns_from_a_delivery_found_by_its_number_matches_the_early_ones(
    make_call,
):
    """No answer came (the POST timed out): a later delivery found by the call's number
    teaches it its id (`_take`), however long after the one that came by id alone; that batch
    queues the early one again."""
    call, clock, running = engine_running_and_early(make_call)

    clock.now += EARLY_WINDOW + timedelta(minutes=1)
    running.step()
    by_number = json.dumps(push()).encode()
    CallEvent.objects.store(source="webhook", body=by_number)
    running.step()  # found by number: the call learns its id, the early delivery is queued
    running.step()

    assert CallEvent.objects.get(body=BUSY.decode()).call_id == call.pk
    assert CallEvent.objects.get(body=by_number.decode()).call_id == call.pk


@pytest.mark.parametrize(
    "long_id",
    ["a" * 140, "a" * 127 + "Σ" + "b" * 12],  # a cut "…Σ" lower-cased ends in a final sigma
)
def test_an_id_too_long_for_its_column_still_matches_once_learned(make_call, long_id):
    """The delivery and the call keep the first 128 characters of an id longer than that: the
    batch matches on the same, so the look queues it again once, not every second."""
    call = make_call(provider_id="", status="pending")
    assert call.begin_sending()
    early = json.dumps({"id": long_id, "status": "BUSY"}).encode()
    CallEvent.objects.store(source="webhook", body=early)
    assert apply_waiting() == 1
    CallEvent.objects.store(source="webhook", body=json.dumps(push(mid=long_id)).encode())
    assert apply_waiting() == 1  # found by number: the call learns the id, cut
    call.refresh_from_db()
    assert call.provider_key == provider_key(long_id[:128])
    apply_waiting()

    assert CallEvent.objects.get(body=early.decode()).call_id == call.pk
    assert CallEvent.objects.queue_again_learned(since=timezone.now() - LOOK_BACK) == 0


def test_an_answer_later_than_answer_late_queues_them_again_itself(make_call):
    call = make_call(provider_id="", status="pending")
    came_early(call, began=timezone.now() - ANSWER_LATE - timedelta(seconds=1))

    answered(call)

    assert apply_waiting() == 1  # no engine looked
    assert matched(call)


def test_a_clock_set_back_misses_nothing_received_meanwhile(make_call):
    """The engine's clock set back 11 minutes (deliveries come meanwhile, stamped by the same
    clock): the look after goes back from the clock as it is now, and a day back at least
    (the look back), so nothing received meanwhile is missed."""
    call = make_call(provider_id="", status="pending")
    clock = Clock()
    running = engine(clock)
    running.step()
    clock.now -= EARLY_WINDOW + timedelta(minutes=1)
    came_early(call)
    CallEvent.objects.filter(body=BUSY.decode()).update(received_at=clock.now)
    answered(call)

    clock.now += LOOK_EARLY_EVERY
    running.step()
    running.step()

    assert matched(call)


def kept_unmatched(n: int, days_ago: int = 2) -> None:
    """`n` deliveries about calls not ours, kept unmatched for ever, received `days_ago`."""
    now = timezone.now()
    CallEvent.objects.bulk_create(
        CallEvent(
            source="webhook",
            received_at=now - timedelta(days=days_ago, seconds=n),
            body=f'{{"id": "foreign-{n}"}}',
            dedupe_key=f"foreign-{n}",
            provider_id=f"foreign-{n}",
            provider_key=f"foreign-{n}",
            applied_at=now,
        )
        for n in range(n)
    )


def taught_but_its_look_failed(running: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A delivery found by the call's number teaches it its id; the batch's look for that id
    fails after its commit, and the engine goes on."""
    monkeypatch.setattr(running.backoff, "failed", lambda error: None)
    look = CallEventQuerySet.queue_again_learned

    def dropped(self: CallEventQuerySet, **looking: object) -> int:
        if "keys" in looking:
            raise OperationalError("server closed the connection unexpectedly")
        return look(self, **looking)  # type: ignore[arg-type]

    with monkeypatch.context() as failing:
        failing.setattr(CallEventQuerySet, "queue_again_learned", dropped)
        CallEvent.objects.store(source="webhook", body=LOOKED_UP)
        assert running.step() is False


def test_a_look_that_failed_after_its_batch_committed_is_made_by_the_next_look_back(
    make_call, monkeypatch
):
    """A batch's look for the id it taught a call fails (the connection dropped just after
    the commit) and the engine goes on: the look that goes back a day, once an EARLY_WINDOW,
    finds the early delivery."""
    call, clock, running = engine_running_and_early(make_call)
    long_ago = clock.now - EARLY_WINDOW - timedelta(minutes=1)  # before any window to come
    CallEvent.objects.filter(body=BUSY.decode()).update(received_at=long_ago)
    taught_but_its_look_failed(running, monkeypatch)
    clock.now += LOOK_EARLY_EVERY
    running.step()
    running.step()
    assert CallEvent.objects.get(body=BUSY.decode()).call_id is None  # not yet: the window
    clock.now += EARLY_WINDOW
    running.step()
    running.step()

    assert CallEvent.objects.get(body=BUSY.decode()).call_id == call.pk


def test_a_call_taught_its_id_while_a_batch_holds_an_old_early_delivery_still_gets_it(
    make_call, monkeypatch
):
    """A backlog: an early delivery received long ago is in a batch, read (no call has its
    id), when a status look-up found by the call's number teaches the call its id and looks
    (not seeing the delivery: it is still waiting). The batch, once committed, looks for the
    ids it left unmatched."""
    call = make_call(provider_id="", status="pending")
    assert call.begin_sending()
    CallEvent.objects.store(source="webhook", body=BUSY)
    long_ago = timezone.now() - EARLY_WINDOW - timedelta(minutes=5)
    CallEvent.objects.filter(body=BUSY.decode()).update(received_at=long_ago)
    match = events._match
    taught: list[CallEvent] = []
    once = iter([True])

    def meanwhile(*args: object) -> object:
        found = match(*args)  # type: ignore[arg-type]
        if next(once, False):
            taught.append(CallEvent.objects.ingest(source="reconcile", body=LOOKED_UP))
        return found

    monkeypatch.setattr(events, "_match", meanwhile)
    assert apply_waiting() == 1
    call.refresh_from_db()
    assert call.provider_id == CALL_ID and taught[0].call_id == call.pk
    apply_waiting()

    assert CallEvent.objects.get(body=BUSY.decode()).call_id == call.pk


def test_a_status_look_up_found_by_number_queues_the_early_delivery_at_once(make_call):
    """The look-up's delivery is applied at once (`ingest`): its look for the id it taught
    queues the early delivery, however old, for the worker's next pass."""
    call = make_call(provider_id="", status="pending")
    came_early(call)
    long_ago = timezone.now() - EARLY_WINDOW - timedelta(minutes=5)
    CallEvent.objects.filter(body=BUSY.decode()).update(received_at=long_ago)

    assert CallEvent.objects.ingest(source="reconcile", body=LOOKED_UP).call_id == call.pk

    assert apply_waiting() == 1
    assert CallEvent.objects.get(body=BUSY.decode()).call_id == call.pk


def early_deliveries(make_call: Callable[..., CallLog], received: list[datetime]) -> list[int]:
    """Deliveries received at these instants, each about its own call, applied while no call
    had their id (unmatched); each call has its id now. Their event ids, in that order."""
    bodies = [
        json.dumps({"id": f"early-{n}", "status": "BUSY"}).encode() for n in range(len(received))
    ]
    pks = [CallEvent.objects.store(source="webhook", body=body) for body in bodies]
    assert apply_waiting() == len(pks)
    for pk, at in zip(pks, received, strict=True):
        CallEvent.objects.filter(pk=pk).update(received_at=at)
    for n in range(len(received)):
        make_call(provider_id=f"early-{n}", to=f"91990000{n:04d}")
    return pks


def queued(pks: list[int]) -> list[int]:
    """Those of `pks` queued again (waiting to be applied)."""
    return sorted(
        CallEvent.objects.filter(pk__in=pks, applied_at=None).values_list("pk", flat=True)
    )


def test_a_look_back_goes_in_parts_the_newest_first_and_skips_none_received_together(make_call):
    """A look back reads a part a look, from the newest back to its bound: every early delivery
    is looked at once, deliveries received at one instant on a part's edge included."""
    now = timezone.now()
    together = now - timedelta(hours=2)
    received = [now - timedelta(hours=1), together, together, together, now - timedelta(hours=3)]
    too_old = now - timedelta(hours=5)
    pks = early_deliveries(make_call, [*received, too_old])
    newest_first = [pks[0], *sorted(pks[1:4], reverse=True), pks[4]]

    parts = []
    at = None
    while True:
        at = CallEvent.objects.look_back_learned(before=at, until=now - timedelta(hours=4), part=2)
        parts.append(queued(pks))
        if at is None:
            break

    assert parts == [sorted(newest_first[:n]) for n in (2, 4, 5)]
    assert pks[-1] not in parts[-1]  # before the look back's bound


def test_a_started_engine_looks_back_one_part_a_look(make_call):
    """A process's first look back goes to the start, a part each look: the newest first, and
    the engine applies what each part found while the look back goes on."""
    now = timezone.now()
    pks = early_deliveries(make_call, [now - timedelta(days=n + 2) for n in range(5)])
    clock = Clock()
    started = Engine(Process(WorkerHeartbeat.Kind.DELIVERIES), jobs=(), now=clock, look_back_part=2)
    matched_after = []
    for _ in range(4):
        started.step()
        matched_after.append(CallEvent.objects.filter(pk__in=pks).exclude(call=None).count())
        clock.now += LOOK_EARLY_EVERY

    assert matched_after == [0, 2, 4, 5]
    assert not started.looking_back
    first_part = CallEvent.objects.filter(pk__in=pks[:2]).values_list("call__provider_id")
    assert sorted(first_part) == [("early-0",), ("early-1",)]  # the newest


def test_a_look_back_part_that_failed_is_made_again_not_skipped(make_call, monkeypatch):
    """The database fails a part of the look back: the engine goes on, and its next look makes
    that part again, from where the look back was."""
    now = timezone.now()
    pks = early_deliveries(make_call, [now - timedelta(days=n + 2) for n in range(4)])
    clock = Clock()
    started = Engine(Process(WorkerHeartbeat.Kind.DELIVERIES), jobs=(), now=clock, look_back_part=2)
    started.step()  # the first part
    monkeypatch.setattr(started.backoff, "failed", lambda error: None)
    look_back = CallEventQuerySet.look_back_learned

    def dropped(self: CallEventQuerySet, **part: object) -> object:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(CallEventQuerySet, "look_back_learned", dropped)
    clock.now += LOOK_EARLY_EVERY
    assert started.step() is False
    monkeypatch.setattr(CallEventQuerySet, "look_back_learned", look_back)
    for _ in range(3):
        clock.now += LOOK_EARLY_EVERY
        started.step()

    assert CallEvent.objects.filter(pk__in=pks, call=None).count() == 0


def test_a_long_look_back_to_the_start_holds_off_no_look_a_day_back(make_call, monkeypatch):
    """The first look back reads every unmatched delivery ever kept, a part a look: however
    long that takes, a look a day back still begins once an EARLY_WINDOW, in turns with it, so
    what a look missed waits no longer. Scaled down: parts of 1, 1,500 deliveries kept (25
    minutes of looks), standing for 3 million at 2,000 a part."""
    kept_unmatched(1500)
    call = make_call(provider_id="", status="pending")
    clock = Clock()
    running = Engine(Process(WorkerHeartbeat.Kind.DELIVERIES), jobs=(), now=clock, look_back_part=1)
    running.step()  # the first look: the look back to the start begins
    came_early(call)
    for _ in range(int((EARLY_WINDOW + timedelta(minutes=1)) / LOOK_EARLY_EVERY)):
        clock.now += LOOK_EARLY_EVERY
        running.step()
    taught_but_its_look_failed(running, monkeypatch)

    for _ in range(int((EARLY_WINDOW + timedelta(minutes=1)) / LOOK_EARLY_EVERY)):
        clock.now += LOOK_EARLY_EVERY
        running.step()

    assert any(back.until is None for back in running.looking_back)  # still under way
    assert CallEvent.objects.get(body=BUSY.decode()).call_id == call.pk


def test_a_look_back_to_the_start_longer_than_a_day_skips_nothing_it_began_before(
    make_call, monkeypatch
):
    """A look back to the start lasting more than LOOK_BACK (86,400 parts of 2,000: 173 million
    deliveries kept) never reads what came after it began; the looks a day back do. Scaled
    down: parts of 1, a look an hour (each standing for 3,600 parts), 30 deliveries kept."""
    kept_unmatched(30, days_ago=40)
    call = make_call(provider_id="", status="pending")
    clock = Clock()
    running = Engine(Process(WorkerHeartbeat.Kind.DELIVERIES), jobs=(), now=clock, look_back_part=1)
    running.step()
    came_early(call)
    clock.now += timedelta(hours=1)
    running.step()
    clock.now += timedelta(hours=1)
    taught_but_its_look_failed(running, monkeypatch)

    for _ in range(24 * 4):
        clock.now += timedelta(hours=1)
        running.step()

    assert CallEvent.objects.get(body=BUSY.decode()).call_id == call.pk
