"""Deliveries that came before the answer to their call's POST (calls/models/events.py
`queue_again_learned`): no call has their id yet, so they are applied unmatched. The engine
looks for them every LOOK_EARLY_EVERY, back EARLY_WINDOW (back to the start at its first look),
and queues again those whose id a call has now; an answer stored later than ANSWER_LATE after
its POST began queues them itself. The send path makes no statement about deliveries."""

import json
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls.engine.clock import Engine
from calls.engine.processes import Process
from calls.models import CallEvent, CallLog, WorkerHeartbeat
from calls.models.events import EARLY_WINDOW, LOOK_EARLY_EVERY, apply_waiting
from calls.models.submissions import ANSWER_LATE
from calls.provider.base import SendResult
from tests.helpers.webhooks import CALL_ID

pytestmark = pytest.mark.django_db
# By id alone, as a provider may tell it: no number to find the call by.
BUSY = json.dumps({"id": CALL_ID, "status": "BUSY"}).encode()
SOMEONE_ELSES = json.dumps({"id": "not-one-of-ours", "status": "BUSY"}).encode()


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


def test_a_started_engine_looks_back_to_the_start_then_as_far_as_an_answer_may_be_late(
    make_call,
):
    call = make_call(provider_id="", status="pending")
    clock = Clock()
    running = engine(clock)
    running.step()
    came_early(call)
    answered(call)

    clock.now += EARLY_WINDOW + timedelta(seconds=1)
    running.step()  # looks back EARLY_WINDOW: the delivery came before that
    running.step()
    assert not matched(call)
    started = engine(clock)
    started.step()  # its first look goes back to the start (no engine may have run meanwhile)
    started.step()

    assert matched(call)


def test_an_answer_later_than_answer_late_queues_them_again_itself(make_call):
    call = make_call(provider_id="", status="pending")
    came_early(call, began=timezone.now() - ANSWER_LATE - timedelta(seconds=1))

    answered(call)

    assert apply_waiting() == 1  # no engine looked
    assert matched(call)
