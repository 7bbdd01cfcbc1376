"""Events are recorded in the outbox in the same transaction as the change that causes them, one
delivery for each endpoint that hears the type."""

import pytest
from django.db import transaction
from django.utils import timezone

from calls.models import (
    ApiKey,
    CallbackDelivery,
    CallbackEndpoint,
    CallbackEvent,
    CallLog,
    Campaign,
    DoNotCall,
)
from calls.models.callbacks import EventType
from calls.models.outbox import EVERYONE, record
from calls.models.records import record_keypresses
from calls.provider.base import SendResult
from calls.schedules import cancel_scheduled
from tests.api.conftest import issue_key
from tests.callbacks.conftest import register
from tests.helpers.campaigns import running_campaign
from tests.helpers.webhooks import CALL_ID, deliver, push


@pytest.fixture
def hears_all(db):
    return register("https://crm.example/hooks/obd")[0]


def told() -> list[tuple[str, dict]]:
    return [(e.type, e.payload) for e in CallbackEvent.objects.order_by("id")]


def test_an_answered_outcome_is_told_as_answered_then_settled(hears_all, call, provider_client):
    deliver(provider_client, push(status="ANSWER"))

    (answered, answered_data), (settled, settled_data) = told()
    assert (answered, settled) == ("call.answered", "call.settled")
    assert answered_data == settled_data
    assert settled_data["call_id"] == call.pk and settled_data["status"] == "answered"
    assert settled_data["to"] == "+918867135123" and settled_data["duration"] == 23
    keys = set(CallbackEvent.objects.values_list("ordering_key", flat=True))
    assert keys == {f"call:{call.pk}"}
    assert CallbackDelivery.objects.filter(endpoint=hears_all).count() == 2


def test_a_call_not_reached_is_told_so_and_a_repeated_delivery_tells_nothing_more(
    hears_all, call, provider_client
):
    deliver(provider_client, push(status="NOANSWER"))
    deliver(provider_client, push(status="NOANSWER"))

    assert [t for t, _ in told()] == ["call.not_reached", "call.settled"]
    assert told()[1][1]["status"] == "no_answer"


@pytest.mark.parametrize(
    ("answer", "told_as"),
    [
        (SendResult(status="rejected", http_status=400, provider_status="INVALID"), ["rejected"]),
        (SendResult(status="error", error="refused the connection"), ["error"]),
        (SendResult(status="queued", http_status=200, provider_id="abc"), []),
    ],
)
def test_a_call_refused_or_never_sent_is_told_as_settled(hears_all, make_call, answer, told_as):
    call = make_call(provider_id="", status="pending")

    call.record_submission(answer, {})

    assert [(t, d["status"]) for t, d in told()] == [("call.settled", s) for s in told_as]
    if told_as:
        assert told()[0][1]["provider_status"] == answer.provider_status


def test_keys_pressed_are_told_once(hears_all, call):
    record_keypresses(call, "12", timezone.now())
    record_keypresses(call, "12", timezone.now())

    ((kind, data),) = told()
    assert kind == "keypress.received" and data["keys"] == "12" and data["call_id"] == call.pk


def test_a_campaign_ending_is_told(hears_all, campaign):
    campaign.stop()

    ((kind, data),) = told()
    assert kind == "campaign.finished"
    assert data["campaign_id"] == campaign.pk and data["status"] == "stopped"


def test_calls_withdrawn_with_their_stopped_campaign_are_each_told_as_settled(
    hears_all, bridge, sound
):
    campaign = running_campaign(bridge, sound, rows=3)
    sent = campaign.calls.order_by("id").first()
    CallLog.objects.filter(pk=sent.pk).update(status="queued", submitted_at=timezone.now())

    campaign.stop()

    withdrawn = list(campaign.calls.filter(status="withdrawn").order_by("id"))
    assert len(withdrawn) == 2
    settled = [data for kind, data in told() if kind == "call.settled"]
    assert [(d["call_id"], d["status"], d["campaign_id"]) for d in settled] == [
        (call.pk, "withdrawn", campaign.pk) for call in withdrawn
    ]


def test_a_call_placed_for_later_and_canceled_is_told_as_settled_once(hears_all, make_call):
    call = make_call(provider_id="", status="pending", not_before=timezone.now())

    assert cancel_scheduled(call)
    assert not cancel_scheduled(call)

    ((kind, data),) = told()
    assert (kind, data["call_id"], data["status"]) == ("call.settled", call.pk, "withdrawn")


def test_withdrawing_with_no_endpoint_hearing_records_nothing_and_still_withdraws(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=2)

    campaign.stop()

    assert not CallbackEvent.objects.exists()
    assert set(campaign.calls.values_list("status", flat=True)) == {"withdrawn"}


def test_numbers_opting_out_are_told_once_each(hears_all):
    DoNotCall.objects.record_opt_outs(["918867135123"], source=DoNotCall.Source.WEBHOOK)
    DoNotCall.objects.record_opt_outs(["918867135123"], source=DoNotCall.Source.WEBHOOK)

    ((kind, data),) = told()
    assert kind == "number.opted_out"
    assert data == {"number": "+918867135123", "source": "webhook", "reason": ""}


def test_nothing_is_told_of_a_change_rolled_back(hears_all):
    with pytest.raises(RuntimeError), transaction.atomic():
        DoNotCall.objects.record_opt_outs(["918867135123"], source=DoNotCall.Source.WEBHOOK)
        raise RuntimeError("the change failed after the event was recorded")

    assert not CallbackEvent.objects.exists()
    assert not DoNotCall.objects.exists()


def test_only_the_endpoints_hearing_a_type_get_it(hears_all, call, provider_client):
    settled_only = register("https://helpdesk.example/obd", ["call.settled"])[0]
    turned_off, _ = register("https://off.example/obd")
    CallbackEndpoint.objects.filter(pk=turned_off.pk).update(enabled=False)

    deliver(provider_client, push(status="BUSY"))

    assert CallbackDelivery.objects.filter(endpoint=settled_only).count() == 1
    assert CallbackDelivery.objects.filter(endpoint=hears_all).count() == 2
    assert CallbackDelivery.objects.count() == 3


def test_each_change_is_told_to_the_endpoints_enabled_at_the_time(db):
    opted_out = (EventType.NUMBER_OPTED_OUT, {"number": "+918867135123"}, "", EVERYONE)
    assert record([opted_out]) == 0
    endpoint, _ = register("https://helpdesk.example/obd")

    assert record([opted_out]) == 1

    CallbackEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False)
    assert record([opted_out]) == 0


def test_nothing_is_recorded_when_no_endpoint_hears(call, provider_client):
    deliver(provider_client, push(status="ANSWER"))

    assert not CallbackEvent.objects.exists()


@pytest.fixture
def keys(db):
    return issue_key("CRM")[0], issue_key("Helpdesk")[0]


def deliveries_to(endpoint: CallbackEndpoint) -> list[tuple[str, object]]:
    found = CallbackDelivery.objects.filter(endpoint=endpoint).order_by("event_id")
    return [(d.event.type, d.event.payload.get("call_id")) for d in found]


def keyed(key: ApiKey, url: str) -> CallbackEndpoint:
    endpoint = register(url)[0]
    CallbackEndpoint.objects.filter(pk=endpoint.pk).update(api_key=key)
    return endpoint


def test_an_endpoint_of_a_key_hears_only_of_that_keys_calls_and_a_portal_wide_one_of_all(
    hears_all, keys, make_call
):
    crm, helpdesk = keys
    for_crm = keyed(crm, "https://crm.example/obd")
    for_helpdesk = keyed(helpdesk, "https://helpdesk.example/obd")
    crm_call = make_call(provider_id="crm-1", api_key=crm)
    page_call = make_call(provider_id="page-1")

    record_keypresses(crm_call, "1", timezone.now())
    record_keypresses(page_call, "2", timezone.now())

    assert deliveries_to(for_crm) == [("keypress.received", crm_call.pk)]
    assert deliveries_to(for_helpdesk) == []
    assert deliveries_to(hears_all) == [
        ("keypress.received", crm_call.pk),
        ("keypress.received", page_call.pk),
    ]


def test_a_keys_campaign_and_its_calls_outcomes_are_told_to_that_keys_endpoint(
    hears_all, keys, campaign, provider_client
):
    crm, helpdesk = keys
    for_crm = keyed(crm, "https://crm.example/obd")
    for_helpdesk = keyed(helpdesk, "https://helpdesk.example/obd")
    Campaign.objects.filter(pk=campaign.pk).update(api_key=crm)
    campaign.refresh_from_db()
    row = campaign.new_row("918867135123", {"Name": "Asha", "otp": "1"}, provider_id=CALL_ID)
    row.provider_key, row.status = CALL_ID, "queued"
    row.save()

    deliver(provider_client, push(status="BUSY"))
    campaign.stop()

    assert row.api_key_id == crm.pk
    heard = [("call.not_reached", row.pk), ("call.settled", row.pk), ("campaign.finished", None)]
    assert deliveries_to(for_crm) == heard and deliveries_to(hears_all) == heard
    assert deliveries_to(for_helpdesk) == []


def test_a_number_opting_out_is_told_to_every_endpoint_keyed_or_not(hears_all, keys):
    for_crm = keyed(keys[0], "https://crm.example/obd")

    DoNotCall.objects.record_opt_outs(["918867135123"], source=DoNotCall.Source.WEBHOOK)

    assert deliveries_to(for_crm) == deliveries_to(hears_all) == [("number.opted_out", None)]
