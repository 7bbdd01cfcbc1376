"""Signed callbacks from a running engine (`manage.py engine` as a real process): a delivery
stored at the webhook door is applied by the engine, which records the call's events in the same
transaction and then posts them; the receiver verifies them with `standardwebhooks`."""

import json

import pytest

from tests.callbacks.conftest import Receiver, register
from tests.helpers.webhooks import AUTH, URL, push
from tests.system.conftest import start_engine
from tests.system.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_running_engine_applies_an_outcome_and_its_callbacks_verify_in_order(
    call, provider_client, settings
):
    settings.OBD_CALLBACKS_ALLOW_PRIVATE = True  # the receiver is on this machine
    receiver = Receiver()
    receiver.start()
    # The call's events only (the engine's other jobs tell of opt-outs the sandbox lists).
    endpoint, secret = register(receiver.url, ["call.answered", "call.not_reached", "call.settled"])
    receiver.secrets.append(secret)
    stored = provider_client.post(
        URL, json.dumps(push(status="NOANSWER")), content_type="application/json", headers=AUTH
    )
    assert stored.status_code in (200, 202)
    engine = start_engine(OBD_CALLBACKS_ALLOW_PRIVATE="true", OBD_CALLBACK_EVERY_SECONDS="1")
    try:
        wait_until(lambda: len(receiver.verified) >= 2, 60, "both callbacks to arrive")
    finally:
        engine.terminate()
        engine.wait(timeout=10)
        receiver.stop()

    kinds = [(v["type"], v["data"]["call_id"], v["data"]["status"]) for v in receiver.verified]
    assert kinds == [
        ("call.not_reached", call.pk, "no_answer"),
        ("call.settled", call.pk, "no_answer"),
    ]
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(ids) == 2 and all(i.startswith("msg_") for i in ids)
    assert endpoint.deliveries.filter(delivered_at=None).count() == 0
