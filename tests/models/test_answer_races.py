"""A POST's answer stored while the deliveries worker applies the deliveries that came before it
(calls/models/submissions.py `record_submission`, calls/models/events.py `apply_waiting` and
`queue_again_learned`, the worker's look for such deliveries).

On PostgreSQL the answer's statement is made to wait for a row lock while the worker reads a
delivery that found no call: the delivery must still be matched once the answer is in (the
worker's next look, a statement of its own, sees what both committed), and the two must never
deadlock. SQLite has one writer: there the same steps run in turn and the same outcome holds."""

import json
import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, transaction

from calls.models import CallEvent, CallLog
from calls.models.events import apply_waiting
from calls.models.life import CallLogQuerySet
from calls.provider.base import SendResult
from tests.helpers.webhooks import CALL_ID, apply_stored, push

pytestmark = pytest.mark.django_db(transaction=True)
BUSY = json.dumps({"id": CALL_ID, "status": "BUSY"}).encode()


def answer() -> SendResult:
    return SendResult(status="queued", http_status=200, provider_id=CALL_ID, body="{}")


def in_thread(target: Callable[[], object], errors: list[Exception]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def waits_for_a_lock(marker: str, thread: threading.Thread) -> bool:
    """PostgreSQL: True once a statement holding `marker` waits for a row lock. SQLite takes no
    row locks: True (the steps then simply run in turn)."""
    if connection.vendor == "sqlite":
        thread.join(10)
        return True
    give_up = time.monotonic() + 10
    while time.monotonic() < give_up and thread.is_alive():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE %s",
                [f"%{marker}%"],
            )
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.01)
    return False


def holding(lock: Callable[[], object], errors: list[Exception]) -> Callable[[], None]:
    """Another transaction holding a row lock until the function returned lets it go. SQLite
    has no row locks (its write lock would only make the steps wait in turn): nothing held."""
    if connection.vendor == "sqlite":
        return lambda: None
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction.atomic():
            lock()
            locked.set()
            release.wait(10)

    holder = in_thread(hold, errors)
    assert locked.wait(10)

    def let_go() -> None:
        release.set()
        holder.join(10)

    return let_go


def test_a_delivery_read_while_the_answer_waits_for_its_call_keeps_its_outcome(make_call):
    """Another transaction holds the call's row a moment (a worker's batch applying a delivery
    matched to it by its number), so the answer waits; meanwhile the worker reads a delivery
    that came before the answer: no call has its id yet, nor when it looks again after its
    commit."""
    call = make_call(provider_id="", status="pending")
    assert call.begin_sending()
    CallEvent.objects.store(source="webhook", body=BUSY)
    errors: list[Exception] = []
    let_go = holding(lambda: CallLog.objects.select_for_update().get(pk=call.pk), errors)

    sender = in_thread(lambda: call.record_submission(answer(), {}), errors)
    blocked = waits_for_a_lock("calls_calllog", sender)
    apply_stored()
    let_go()
    sender.join(10)
    apply_stored()

    assert blocked and not errors
    event = CallEvent.objects.get()
    call.refresh_from_db()
    assert event.call_id == call.pk
    assert (call.status, call.provider_status) == ("busy", "BUSY")


def test_an_answer_and_a_batch_holding_its_early_delivery_never_deadlock(make_call, monkeypatch):
    """A delivery by id only came before the answer (read: no call) and came again (the
    provider's retry): it waits, keyed. The worker's batch claims it with a delivery about the
    same call matched by its number, and goes on to lock the call while the answer is stored."""
    call = make_call(provider_id="", status="pending")
    assert call.begin_sending()
    CallEvent.objects.store(source="webhook", body=BUSY)
    apply_stored()
    CallEvent.objects.store(source="webhook", body=BUSY)  # the provider's retry
    CallEvent.objects.store(source="webhook", body=json.dumps(push(mid=CALL_ID)).encode())
    assert CallEvent.objects.waiting().count() == 2
    in_batch, go, errors = threading.Event(), threading.Event(), []
    take_outcomes = CallLogQuerySet.take_outcomes

    def paused(self: CallLogQuerySet, *args: object) -> list[int]:
        in_batch.set()
        go.wait(10)
        return take_outcomes(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(CallLogQuerySet, "take_outcomes", paused)
    worker = in_thread(apply_waiting, errors)
    assert in_batch.wait(10)
    sender = in_thread(lambda: call.record_submission(answer(), {}), errors)
    # On PostgreSQL the answer touches no delivery: it is stored while the batch holds them (on
    # SQLite it waits for the batch's write lock).
    if connection.vendor != "sqlite":
        sender.join(15)
    stored_meanwhile = not sender.is_alive()
    go.set()
    worker.join(15)
    sender.join(15)
    apply_stored()

    assert errors == []
    assert stored_meanwhile or connection.vendor == "sqlite"
    call.refresh_from_db()
    assert call.provider_id == CALL_ID
    assert CallEvent.objects.filter(call=call).count() == 2
