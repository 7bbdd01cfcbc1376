"""`voice:unsubscription` deliveries (calls/webhooks.py): known by their documented shape, read
into `Delivery.unsubscribed` as normalised numbers, and never able to settle a call."""

import json

import pytest

from calls.models import CallEvent, DoNotCall
from calls.webhooks import parse_delivery
from tests.helpers.webhooks import deliver

DOCUMENTED = {
    "id": 41,
    "receiver": "919876540010",
    "type": "voice",
    "value": "STOP",
    "created_at": "2026-11-27 18:30:04",
    "status": "Unsubscriber created successfully",
}


def parsed(fields: dict, content_type: str = "application/json"):
    return parse_delivery(content_type=content_type, body=json.dumps(fields).encode())


@pytest.mark.parametrize(
    "fields",
    [
        DOCUMENTED,
        DOCUMENTED | {"receiver": 919876540010},  # a JSON number
        DOCUMENTED | {"receiver": "+91 98765 40010"},
        {"receiver": "919876540010", "status": "Unsubscriber created successfully"},
        {"id": 1, "receiver": "919876540010", "type": "voice", "value": "STOP"},
    ],
    ids=["documented", "number", "typed", "status-only", "no-status"],
)
def test_an_unsubscription_names_the_number_and_settles_no_call(fields):
    delivery = parsed(fields)
    assert delivery.unsubscribed == ("919876540010",)
    assert (delivery.outcome, delivery.ids, delivery.status, delivery.problems) == ("", [], "", ())
    assert delivery.extra["receiver"]


def test_an_unsubscription_without_a_valid_number_is_flagged_not_listed():
    delivery = parsed(DOCUMENTED | {"receiver": "<script>"})
    assert delivery.unsubscribed == ()
    assert delivery.problems == ("receiver is not a phone number: '<script>'",)


def test_a_call_outcome_is_not_taken_for_an_unsubscription():
    delivery = parsed({"mid": "m-1", "to": "919876540010", "status": "ANSWER"})
    assert (delivery.unsubscribed, delivery.outcome) == ((), "answered")
    assert json.loads(json.dumps(delivery.as_json()))["unsubscribed"] == []


def test_an_unsubscription_through_the_door_lists_the_number_once(provider_client, db):
    for _ in range(2):  # the provider may deliver it twice
        assert deliver(provider_client, DOCUMENTED).status_code == 202
    deliver(provider_client, DOCUMENTED | {"id": 42})  # a second opt-out of the same number

    entry = DoNotCall.objects.get()
    assert (entry.number, entry.source) == ("919876540010", "webhook")
    event = CallEvent.objects.get(body__contains='"id": 41')
    assert entry.reason == f"provider webhook, event {event.pk}"
    assert (event.deliveries, event.call, event.applied_at is not None) == (2, None, True)
