"""The engine's callbacks job against a real receiver on this machine, which verifies every
callback with the `standardwebhooks` library."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User

from calls.callbacks.delivery import ATTEMPTS, BACKOFF
from calls.models import CallbackAttempt, CallbackDelivery, CallbackEndpoint, Notice
from calls.models.callbacks import EventType
from calls.models.outbox import record
from tests.callbacks.conftest import Receiver, later, register, run_job

pytestmark = pytest.mark.django_db(transaction=True)


def settle(call_id: int, status: str = "answered") -> None:
    """A call's outcome told to the outbox, as the outcome applier does."""
    data = {"call_id": call_id, "status": status}
    record([(EventType.CALL_SETTLED, data, f"call:{call_id}", None)])


def test_a_callback_verifies_on_the_receiving_side_with_its_stable_id(endpoint, receiver):
    settle(7)

    assert run_job()["delivered"] == 1

    (got,) = receiver.received
    assert got.verified == {
        "type": "call.settled",
        "timestamp": got.verified["timestamp"],
        "data": {"call_id": 7, "status": "answered"},
    }
    delivery = CallbackDelivery.objects.get()
    assert got.headers["webhook-id"] == delivery.event.message_id
    assert got.headers["webhook-id"].startswith("msg_")
    assert got.headers["Host"] == f"127.0.0.1:{receiver.port}"
    assert delivery.delivered_at is not None
    assert delivery.attempt_log.get().status_code == 204


def test_a_receiver_down_for_a_while_gets_the_event_later_with_the_same_id(endpoint, receiver):
    receiver.stop()
    settle(1)

    assert run_job()["failed"] == 1
    delivery = CallbackDelivery.objects.get()
    assert delivery.next_attempt_at == delivery.attempt_log.get().attempted_at + BACKOFF[0]
    assert "could not connect" in delivery.last_error
    assert run_job().get("failed", 0) == 0  # not due again before its backoff

    with later(seconds=5):
        assert run_job()["failed"] == 1  # still down: the next wait is longer
    delivery.refresh_from_db()
    assert delivery.next_attempt_at - delivery.attempt_log.first().attempted_at == BACKOFF[1]

    receiver.start()
    with later(minutes=2):
        assert run_job()["delivered"] == 1

    delivery.refresh_from_db()
    assert delivery.attempts == 3 and delivery.delivered_at is not None
    assert len(receiver.verified) == 1
    assert receiver.received[0].headers["webhook-id"] == delivery.event.message_id
    assert CallbackEndpoint.objects.get().failing_since is None


def test_a_delivery_is_given_up_after_more_than_a_day_of_failures(endpoint, receiver):
    receiver.status = 503
    settle(1)
    waited = 0.0
    for wait in (timedelta(0), *BACKOFF):
        waited += wait.total_seconds()
        with later(seconds=waited):
            run_job()

    delivery = CallbackDelivery.objects.get()
    assert waited > 24 * 3600
    assert delivery.attempts == ATTEMPTS == len(receiver.received)
    assert delivery.given_up_at is not None and delivery.next_attempt_at is None
    assert delivery.last_status_code == 503


def test_a_slow_receiver_times_out_is_retried_and_holds_no_other_endpoint_back(
    endpoint, receiver, settings
):
    fast = Receiver()
    fast.start()
    try:
        _, secret = register(fast.url)
        fast.secrets.append(secret)
        receiver.delay = 2.0  # past the 0.5 s read timeout
        for call_id in (1, 2, 3):
            settle(call_id)

        ran = run_job()

        assert len(fast.verified) == 3  # every event reached the fast endpoint
        assert ran["failed"] == 1  # the slow one was tried once this round, not three times
        slow = CallbackDelivery.objects.filter(endpoint=endpoint)
        attempt = CallbackAttempt.objects.get(delivery__endpoint=endpoint)
        assert attempt.error == "timed out waiting for the answer"
        assert attempt.status_code is None
        receiver.delay = 0
        with later(seconds=6):
            run_job()
        assert all(d.delivered_at for d in slow)
        assert [r["data"]["call_id"] for r in receiver.verified][-3:] == [1, 2, 3]
    finally:
        fast.stop()


def test_a_calls_later_event_waits_until_its_earlier_one_is_delivered(endpoint, receiver):
    record([(EventType.CALL_ANSWERED, {"call_id": 1}, "call:1", None)])
    record([(EventType.CALL_SETTLED, {"call_id": 1}, "call:1", None)])
    record([(EventType.CALL_SETTLED, {"call_id": 2}, "call:2", None)])
    receiver.status = 500

    ran = run_job()

    # The endpoint failed: it rests until the next run, and call 1's next event was not sent.
    # Call 2's event waits for the job's interval, not a second: a failing endpoint is not
    # knocked on every second.
    assert ran["failed"] == 1 and ran["waiting"] == 0
    sent = [(r.verified["type"], r.verified["data"]["call_id"]) for r in receiver.received]
    assert sent == [("call.answered", 1)]
    receiver.status = 200
    with later(seconds=5):
        run_job()
    # Call 2 is not held behind call 1's events; call 1's come in their order.
    sent = [(r.verified["type"], r.verified["data"]["call_id"]) for r in receiver.received]
    assert sent[1:] == [("call.answered", 1), ("call.settled", 2), ("call.settled", 1)]


def test_during_a_rotation_either_secret_verifies(endpoint, receiver, settings):
    old = receiver.secrets[0]
    new = endpoint.rotate_secret(timedelta(hours=24))
    settle(1)
    run_job()

    (got,) = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        receiver.secrets = [secret]
        assert receiver.verify(got.body, got.headers) is not None

    with later(hours=25):
        settle(2)
        run_job()
        last = receiver.received[-1]
        receiver.secrets = [old]
        assert receiver.verify(last.body, last.headers) is None  # the overlap is over
        receiver.secrets = [new]
        assert receiver.verify(last.body, last.headers) is not None


def test_a_redirect_is_not_followed(endpoint, receiver):
    receiver.status = 302
    receiver.headers = {"Location": "http://169.254.169.254/latest/meta-data/"}
    settle(1)

    run_job()

    delivery = CallbackDelivery.objects.get()
    assert delivery.delivered_at is None and delivery.last_status_code == 302
    assert len(receiver.received) == 1


def test_an_endpoint_failing_for_days_is_disabled_and_supervisors_are_told(
    endpoint, receiver, supervisor, settings
):
    settings.OBD_CALLBACK_DISABLE_AFTER_DAYS = 3
    receiver.status = 500
    settle(1)
    run_job()
    with later(days=2):
        settle(2)
        run_job()
    assert CallbackEndpoint.objects.get().enabled

    with later(days=3, minutes=1):
        settle(3)
        assert run_job()["disabled"] == 1

    endpoint.refresh_from_db()
    assert not endpoint.enabled and "failed for 3 days" in endpoint.disabled_reason
    notice = Notice.objects.get(user=supervisor, kind=Notice.Kind.CALLBACKS_DISABLED)
    assert str(endpoint.pk) in notice.link
    sent = len(receiver.received)
    with later(days=4):
        settle(4)
        run_job()
    assert len(receiver.received) == sent  # nothing more goes to a disabled endpoint
    assert User.objects.filter(notices__kind=Notice.Kind.CALLBACKS_DISABLED).count() == 1


def test_events_done_with_are_pruned_after_a_month_and_waiting_ones_kept(endpoint, receiver):
    settle(1)
    run_job()
    receiver.status = 500
    settle(2)
    run_job()

    with later(days=31):
        assert run_job()["pruned"] == 1

    assert [d.event.payload["call_id"] for d in CallbackDelivery.objects.all()] == [2]
