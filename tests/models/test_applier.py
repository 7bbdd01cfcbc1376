"""The deliveries worker's batches (calls/models/events.py `apply_waiting`): several workers at
once share the queue without applying a delivery twice or losing one, and whatever the order and
the batches, every call ends as the outcome rule says (latest attempt by start time, answered
never replaced, attempts counted). Run on PostgreSQL in CI, where the row locks are real."""

import json
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from calls.models import CallEvent, CallLog, events
from calls.models.events import SQLITE_SLICE, apply_waiting
from calls.models.life import CallLogQuerySet
from tests.helpers.webhooks import DAY, apply_stored, provider_time

pytestmark = pytest.mark.django_db(transaction=True)

CALLS = 40
OUTCOMES = {"ANSWER": "answered", "NOANSWER": "no_answer", "BUSY": "busy"}
RECORDING = "https://recordings.example.com/call-dst.mp3"


def attempt(call_id: str, status: str, minute: int) -> bytes:
    return json.dumps(
        {
            "mid": call_id,
            "status": status,
            "start_at": f"{DAY} 10:{minute:02d}:00",
            "end_at": f"{DAY} 10:{minute:02d}:20",
            "duration": "20",
        }
    ).encode()


def expected(attempts: list[tuple[str, int]]) -> tuple[str, int]:
    """The rule, said plainly: answered if any attempt was, else the latest attempt's outcome."""
    answered = [minute for status, minute in attempts if status == "ANSWER"]
    status, minute = max(attempts, key=lambda a: a[1])
    if answered:
        return "answered", max(answered)
    return OUTCOMES[status], minute


@pytest.fixture
def calls(make_call) -> list[CallLog]:
    return [make_call(provider_id=f"call-{n:03d}") for n in range(CALLS)]


def store_shuffled(calls: list[CallLog], seed: int) -> dict[int, list[tuple[str, int]]]:
    """Three attempts per call, each delivered once or twice, all in a random order."""
    rng = random.Random(seed)
    plan = {
        call.pk: [(rng.choice(list(OUTCOMES)), minute) for minute in rng.sample(range(60), 3)]
        for call in calls
    }
    bodies = [
        attempt(call.provider_id, status, minute)
        for call in calls
        for status, minute in plan[call.pk]
        for _ in range(rng.choice([1, 2]))
    ]
    rng.shuffle(bodies)
    for body in bodies:
        CallEvent.objects.store(source="webhook", body=body)
    return plan


def work_until_empty(batch: int) -> int:
    try:
        applied = 0
        while claimed := apply_waiting(batch):
            applied += claimed
        return applied
    finally:
        connection.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_four_workers_at_once_apply_every_delivery_once_and_follow_the_rule(calls, seed):
    plan = store_shuffled(calls, seed)
    stored = CallEvent.objects.count()

    with ThreadPoolExecutor(max_workers=4) as pool:
        claimed = sum(pool.map(work_until_empty, [7, 7, 7, 7]))

    assert claimed == stored  # each stored delivery claimed by exactly one worker
    assert not CallEvent.objects.waiting().exists()
    assert not CallEvent.objects.filter(call=None).exists()
    for call in CallLog.objects.filter(pk__in=plan):
        status, minute = expected(plan[call.pk])
        assert (call.status, call.started_at, call.attempts) == (
            status,
            provider_time(f"10:{minute:02d}:00"),
            3,
        ), plan[call.pk]


def test_a_batch_held_by_one_worker_is_skipped_by_another_not_waited_for(calls):
    store_shuffled(calls[:10], seed=4)
    held, release = threading.Event(), threading.Event()
    first_claim: list[int] = []

    def slow_worker() -> None:
        try:
            with transaction.atomic():
                rows = (
                    CallEvent.objects.waiting()
                    .select_for_update(skip_locked=True)
                    .order_by("id")
                    .values_list("pk", flat=True)
                )
                first_claim.extend(rows[:5])
                held.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_worker)
    thread.start()
    held.wait(timeout=10)
    if connection.vendor == "postgresql":
        other = work_until_empty(100)  # takes the rest at once, while the first still holds
        release.set()
        thread.join()
        assert other == CallEvent.objects.count() - len(first_claim)
        assert set(CallEvent.objects.waiting().values_list("pk", flat=True)) == set(first_claim)
    else:
        release.set()  # SQLite has one writer at a time: the second waits for the first
        thread.join()
        assert work_until_empty(100) == CallEvent.objects.count()


def test_a_batch_costs_the_same_few_statements_whatever_its_size(calls):
    counts = []
    for size in (5, SQLITE_SLICE):
        CallEvent.objects.all().delete()
        for call in calls[:size]:
            CallEvent.objects.store(source="webhook", body=attempt(call.provider_id, "BUSY", size))
        with CaptureQueriesContext(connection) as queries:
            assert apply_waiting(size) == size
        counts.append(len(queries))

    assert counts[0] == counts[1]
    assert counts[1] <= 11


def test_sqlites_write_lock_is_held_for_the_writes_and_one_look_at_the_calls(calls):
    for call in calls[:SQLITE_SLICE]:
        CallEvent.objects.store(source="webhook", body=attempt(call.provider_id, "BUSY", 1))
    with CaptureQueriesContext(connection) as queries:
        assert apply_waiting(SQLITE_SLICE) == SQLITE_SLICE

    statements = [q["sql"] for q in queries.captured_queries]
    if connection.vendor == "sqlite":
        held = statements[statements.index("BEGIN IMMEDIATE") + 1 : statements.index("COMMIT")]
        # The events' write, the calls read again to check nothing changed since they were
        # decided, the calls' write, the callback endpoints: no start times counted, no ORM read.
        assert len(held) == 4, held
        assert not any("DISTINCT" in sql for sql in held)
        assert any("DISTINCT" in sql for sql in statements[: statements.index("BEGIN IMMEDIATE")])
    else:  # row locks: decided under the calls' locks, in the claim's transaction
        assert any(sql.endswith("FOR UPDATE") and "calls_calllog" in sql for sql in statements)
    assert CallLog.objects.filter(status="busy").count() == SQLITE_SLICE


def apply_decided_first(body: bytes, meanwhile: Callable[[], object] = lambda: None) -> CallEvent:
    """One delivery applied as SQLite's worker applies a slice: its outcome decided before the
    write lock, `meanwhile` done by another process in between, then written under the lock."""
    event = CallEvent.objects.get(pk=CallEvent.objects.store(source="webhook", body=body))
    read = events._read([event], waiting=True)
    told = events._told([event], read.deliveries)
    decided = CallLog.objects.decide_outcomes(told, {event.pk: (event.call_id, event.started_at)})
    meanwhile()
    with transaction.atomic():
        events._apply([event], read, decided)
    return event


def state(call: CallLog) -> tuple[str, int, datetime | None]:
    call.refresh_from_db()
    return call.status, call.attempts, call.started_at


def test_a_call_changed_after_its_outcome_was_decided_is_decided_again_under_its_lock(calls):
    call = calls[0]
    # Meanwhile another delivery is applied: a later attempt, answered.
    later = attempt(call.provider_id, "ANSWER", 9)
    event = apply_decided_first(
        attempt(call.provider_id, "BUSY", 5),
        lambda: CallEvent.objects.ingest(source="webhook", body=later),
    )

    assert state(call) == ("answered", 2, provider_time("10:09:00"))
    event.refresh_from_db()
    assert event.applied_at is not None and event.call_id == call.pk


def test_a_start_applied_meanwhile_that_changes_no_column_is_still_counted(calls):
    call = calls[0]
    # Answered, told without a start: one attempt, none of its starts known.
    CallEvent.objects.ingest(
        source="webhook", body=json.dumps({"mid": call.provider_id, "status": "ANSWER"}).encode()
    )
    assert state(call) == ("answered", 1, None)
    # Meanwhile a busy attempt with a start is applied: the call stays answered, with 1 attempt.
    busy = attempt(call.provider_id, "BUSY", 3)
    apply_decided_first(
        attempt(call.provider_id, "NOANSWER", 5),
        lambda: CallEvent.objects.ingest(source="webhook", body=busy),
    )

    assert state(call)[:2] == ("answered", 2)


def test_an_attempt_in_the_repeated_hour_of_a_clock_change_is_counted_once(make_call, settings):
    settings.OBD_PROVIDER_TIMEZONE = "Europe/London"  # 01:00-02:00 on 25 Oct 2026 comes twice
    call = make_call(provider_id="call-dst")
    told = {"mid": "call-dst", "start_at": "2026-10-25 01:30:00", "end_at": "2026-10-25 01:30:20"}
    CallEvent.objects.ingest(
        source="webhook", body=json.dumps(told | {"status": "RINGING"}).encode()
    )
    apply_decided_first(json.dumps(told | {"status": "BUSY"}).encode())

    assert state(call)[:2] == ("busy", 1)


def test_outcomes_decided_before_the_lock_are_written_as_decided_only_on_sqlite(calls, monkeypatch):
    call = calls[0]
    CallEvent.objects.ingest(source="webhook", body=attempt(call.provider_id, "NOANSWER", 3))
    locked: list[bool] = []
    select_for_update = CallLogQuerySet.select_for_update
    monkeypatch.setattr(
        CallLogQuerySet,
        "select_for_update",
        lambda self, **kw: locked.append(True) or select_for_update(self, **kw),
    )

    apply_decided_first(attempt(call.provider_id, "BUSY", 5))

    # SQLite's transaction holds the whole database: an unchanged call's decision is written as
    # made. PostgreSQL decides again under the rows' locks (a read that waits for one sees the
    # other tables as they were before the wait).
    assert locked == ([] if connection.vendor == "sqlite" else [True])
    assert state(call) == ("busy", 2, provider_time("10:05:00"))


def test_an_attempt_told_again_in_the_repeated_hour_keeps_what_is_known(make_call, settings):
    settings.OBD_PROVIDER_TIMEZONE = "Europe/London"  # 01:00-02:00 on 25 Oct 2026 comes twice
    call = make_call(provider_id="call-dst")
    told = {"mid": "call-dst", "status": "ANSWER", "start_at": "2026-10-25 01:30:00"}
    recorded = {"end_at": "2026-10-25 01:30:20", "duration": "20", "recording_url": RECORDING}
    CallEvent.objects.ingest(source="webhook", body=json.dumps(told | recorded).encode())
    CallEvent.objects.ingest(source="webhook", body=json.dumps(told | {"x": "again"}).encode())

    call.refresh_from_db()
    assert (call.attempts, call.duration, call.recording_url) == (1, 20, RECORDING)


def test_sqlites_one_writer_is_held_a_slice_at_a_time_and_left_free_as_long(calls, monkeypatch):
    for call in calls[:30]:
        CallEvent.objects.store(source="webhook", body=attempt(call.provider_id, "BUSY", 1))
    for call in calls[30:]:
        CallEvent.objects.store(source="webhook", body=attempt(call.provider_id, "NOANSWER", 2))
    transactions: list[int] = []
    pauses: list[float] = []
    apply = events._apply
    monkeypatch.setattr(
        events,
        "_apply",
        lambda batch, *args: transactions.append(len(batch)) or apply(batch, *args),
    )
    monkeypatch.setattr(events.time, "sleep", pauses.append)

    assert apply_waiting(100) == CALLS

    if connection.vendor == "sqlite":  # the door's INSERT gets in between two slices
        assert transactions == [SQLITE_SLICE, CALLS - SQLITE_SLICE]
        assert len(pauses) == 1 and pauses[0] > 0
    else:  # row locks: the door never waits for the worker
        assert (transactions, pauses) == ([CALLS], [])
    assert not CallEvent.objects.waiting().exists()
    assert CallLog.objects.filter(status="busy").count() == 30


def test_a_failed_batch_leaves_every_delivery_waiting_for_the_next_try(calls, monkeypatch):
    store_shuffled(calls[:5], seed=5)

    def broken(self, *args, **kwargs):
        raise RuntimeError("the database went away mid-batch")

    monkeypatch.setattr(CallLogQuerySet, "take_outcomes", broken)
    with pytest.raises(RuntimeError):
        apply_waiting()
    assert CallEvent.objects.waiting().count() == CallEvent.objects.count()
    monkeypatch.undo()

    apply_stored()
    assert not CallEvent.objects.waiting().exists()
    assert set(
        CallLog.objects.filter(pk__in=[c.pk for c in calls[:5]]).values_list("attempts", flat=True)
    ) == {3}


def test_sqlites_write_lock_is_taken_only_after_the_slice_is_read_parsed_and_matched(
    calls, monkeypatch
):
    for call in calls[:5]:
        CallEvent.objects.store(source="webhook", body=attempt(call.provider_id, "BUSY", 1))
    in_transaction: list[bool] = []
    built: list[bool] = []
    read, rows_update = events._read, events.rows_update
    monkeypatch.setattr(
        events,
        "_read",
        lambda batch, **kw: in_transaction.append(connection.in_atomic_block) or read(batch, **kw),
    )
    monkeypatch.setattr(
        events,
        "rows_update",
        lambda *a, **kw: built.append(connection.in_atomic_block) or rows_update(*a, **kw),
    )

    assert apply_waiting() == 5

    # SQLite: no transaction (no write lock) while reading and building the events' write;
    # PostgreSQL: the claim's row locks.
    assert in_transaction == built == [connection.vendor != "sqlite"]
    assert CallLog.objects.filter(status="busy").count() == 5


def test_a_delivery_another_worker_applied_meanwhile_is_not_applied_twice(calls, monkeypatch):
    for call in calls[:4]:
        CallEvent.objects.store(source="webhook", body=attempt(call.provider_id, "ANSWER", 1))
    first = CallEvent.objects.order_by("id").first()
    assert first is not None
    read = events._read

    def another_worker_was_quicker(batch: list[CallEvent], **kw: bool) -> events.Read:
        if connection.vendor == "sqlite":  # on PostgreSQL the claim's row locks keep others out
            CallEvent.objects.filter(pk=first.pk).update(applied_at=first.received_at)
        return read(batch, **kw)

    monkeypatch.setattr(events, "_read", another_worker_was_quicker)
    applied = apply_waiting()

    assert applied == (3 if connection.vendor == "sqlite" else 4)
    # The slice was decided before the lock: with one of its deliveries not its own to apply,
    # it was decided again under the lock, and that delivery's call left as it was.
    assert CallLog.objects.filter(status="answered").count() == applied
    first.refresh_from_db()
    assert (first.applied_at == first.received_at) == (connection.vendor == "sqlite")
    assert not CallEvent.objects.waiting().exists()
