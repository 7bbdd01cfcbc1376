"""Calls over the API (calls/api/calls.py): placed through the call form, stored pending and sent
by the worker like a page's call, audited under the key's name; read and listed with the log's
filters and cursor."""

from datetime import timedelta

import pytest
from django.utils import timezone

from calls.models import AuditEntry, CallLog, DoNotCall
from calls.vocabulary import MASK
from tests.api.conftest import issue_key
from tests.helpers.portal import logged_in

pytestmark = pytest.mark.django_db


def place(api, **body):
    return api.post("/api/v1/calls", body, content_type="application/json")


def otp_call(bridge, otp_flow, **more):
    return {
        "bridge": bridge.pk,
        "to": "+91 88671 35123",
        "flow": otp_flow.pk,
        "variables": {"Name": "Asha", "otp": "4821"},
        **more,
    }


def test_a_call_placed_through_the_api_is_stored_pending_and_sent_by_the_worker(
    api, bridge, otp_flow, sends
):
    response = place(api, **otp_call(bridge, otp_flow, name="obd_api_call", interval=15))

    assert response.status_code == 201
    body = response.json()
    call = CallLog.objects.get(pk=body["id"])
    assert body["status"] == "pending" and call.status == CallLog.Status.PENDING
    assert call.to == "918867135123" and call.name == "obd_api_call" and call.interval == 15
    assert body["variables"] == {"Name": "Asha", "otp": MASK}
    assert "4821" not in response.content.decode()
    assert sends.run() == ["queued"]


def test_an_api_call_is_audited_under_the_keys_name_and_shown_so_on_the_call_page(
    api, agent, bridge, otp_flow, sends
):
    call_id = place(api, **otp_call(bridge, otp_flow)).json()["id"]

    entry = AuditEntry.objects.get(call_id=call_id)
    assert entry.action == AuditEntry.Action.PLACED and entry.api_key is not None
    assert entry.actor is None and entry.who == "API key “CRM”"
    page = logged_in(agent).get(f"/calls/{call_id}/").content.decode()
    assert "API key “CRM”" in page


def test_an_api_call_is_placed_by_its_key_on_the_call_log_and_the_call_page(
    api, api_key, agent, bridge, otp_flow, sends
):
    call_id = place(api, **otp_call(bridge, otp_flow)).json()["id"]

    call = CallLog.objects.get(pk=call_id)
    assert call.api_key == api_key[0] and call.created_by is None
    assert call.placed_by == "API key “CRM”"
    client = logged_in(agent)
    rows = client.get("/calls/").content.decode().split("<tr")
    (row,) = [row for row in rows if f'href="/calls/{call_id}/"' in row]
    assert "API key “CRM”" in row
    assert "Stored by API key “CRM”" in client.get(f"/calls/{call_id}/").content.decode()


def test_the_api_refuses_a_number_on_the_do_not_call_list_in_the_forms_words(
    api, agent, bridge, sound
):
    DoNotCall.objects.create(number="918867135123", reason="asked on 2 Nov")
    form_page = logged_in(agent).post(
        "/calls/new/", {"bridge": bridge.pk, "to": "+91 88671 35123", "audio": sound.pk}
    )

    response = place(api, bridge=bridge.pk, to="+91 88671 35123", audio=sound.pk)

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error == {
        "field": "to",
        "message": "This number is on the do-not-call list (asked on 2 Nov).",
    }
    assert error["message"] in form_page.content.decode()
    assert not CallLog.objects.exists()


def test_each_missing_variable_and_both_flow_and_audio_are_said_in_words(
    api, bridge, otp_flow, sound
):
    response = place(api, bridge=bridge.pk, to="+91 88671 35123", flow=otp_flow.pk, audio=sound.pk)

    errors = response.json()["errors"]
    assert {"field": "variables.Name", "message": "This field is required."} in errors
    assert {"field": None, "message": "Choose an IVR flow or an audio, not both."} in errors


def test_a_variable_the_flow_does_not_take_is_refused_not_dropped(api, bridge, otp_flow, sound):
    variables = {"Name": "Asha", "otp": "4821", "Nmae": "Asha"}
    misspelt = place(
        api, bridge=bridge.pk, to="+91 88671 35123", flow=otp_flow.pk, variables=variables
    )
    with_audio = place(
        api, bridge=bridge.pk, to="+91 88671 35123", audio=sound.pk, variables={"x": "1"}
    )

    assert misspelt.status_code == with_audio.status_code == 422
    assert misspelt.json()["errors"] == [
        {"field": "variables.Nmae", "message": "Not a variable of this flow (Name, otp)."}
    ]
    assert with_audio.json()["errors"] == [
        {"field": "variables.x", "message": "Not a variable of this flow (no variables)."}
    ]
    assert not CallLog.objects.exists()


def test_a_number_called_minutes_ago_needs_call_again(api, bridge, sound, sends):
    assert place(api, bridge=bridge.pk, to="+91 88671 35123", audio=sound.pk).status_code == 201

    again = place(api, bridge=bridge.pk, to="+91 88671 35123", audio=sound.pk)
    anyway = place(api, bridge=bridge.pk, to="+91 88671 35123", audio=sound.pk, call_again=True)

    assert again.status_code == 422
    assert again.json()["errors"][0]["field"] == "call_again"
    assert anyway.status_code == 201
    assert CallLog.objects.count() == 2


def test_a_call_at_a_later_time_waits_until_then(api, bridge, sound, sends):
    at = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)

    response = place(api, bridge=bridge.pk, to="+91 88671 35123", audio=sound.pk, at=at.isoformat())

    assert response.status_code == 201
    call = CallLog.objects.get()
    assert call.not_before == at and call.is_scheduled
    assert AuditEntry.objects.get().detail == "for later"
    assert sends.run() == []


def test_a_time_past_is_refused_in_the_forms_words(api, bridge, sound):
    at = (timezone.now() - timedelta(hours=1)).isoformat()

    response = place(api, bridge=bridge.pk, to="+91 88671 35123", audio=sound.pk, at=at)

    assert response.json()["errors"] == [
        {"field": "at", "message": "That time has passed: leave it empty to call now."}
    ]


def test_a_call_is_read_by_its_id(api, bridge, sound, sends):
    call_id = place(api, bridge=bridge.pk, to="+91 88671 35123", audio=sound.pk).json()["id"]

    body = api.get(f"/api/v1/calls/{call_id}").json()

    assert body["id"] == call_id and body["audio"] == sound.pk and body["to"] == "918867135123"
    assert api.get(f"/api/v1/calls/{call_id + 1}").status_code == 404


def test_the_list_pages_with_cursors_and_filters_like_the_call_log(api, bridge, sound):
    now = timezone.now()
    for n in range(55):
        CallLog.objects.create(
            bridge=bridge,
            audio=sound,
            to=f"9188671351{n:02d}",
            status=CallLog.Status.ANSWERED if n % 2 else CallLog.Status.BUSY,
            submitted_at=now - timedelta(minutes=n),
        )

    first = api.get("/api/v1/calls").json()
    second = api.get("/api/v1/calls", {"before": first["older"]}).json()
    answered = api.get("/api/v1/calls", {"status": "answered"}).json()

    assert len(first["calls"]) == 50 and len(second["calls"]) == 5
    seen = [c["id"] for c in first["calls"] + second["calls"]]
    assert len(set(seen)) == 55 and second["older"] is None
    assert {c["status"] for c in answered["calls"]} == {"answered"} and len(answered["calls"]) == 27


@pytest.mark.parametrize(
    "query",
    [
        {"status": "nonsense"},
        {"since": "32 Foo 2026"},
        {"before": "abc"},
        {"q": "a\x00b"},
        {"before": "9" * 5000},  # past int()'s 4300 digits
        {"after": "1-2-3"},  # digits and dashes, but no cursor
        {"before": "-1"},
        {"until": "9999-12-31"},  # the day after it is past datetime's last
        {"since": "0001-01-01"},
    ],
)
def test_a_filter_that_cannot_be_read_is_a_problem_not_an_empty_page(api, query):
    response = api.get("/api/v1/calls", query)

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"


def test_a_call_placed_by_one_key_is_read_by_another_with_the_read_scope(
    api, bridge, sound, client_with
):
    call_id = place(api, bridge=bridge.pk, to="+91 88671 35123", audio=sound.pk).json()["id"]
    _, reader = issue_key(name="Helpdesk", scopes=["calls:read"])

    assert client_with(reader).get(f"/api/v1/calls/{call_id}").status_code == 200
    assert (
        place(
            client_with(reader), bridge=bridge.pk, to="+91 88671 35124", audio=sound.pk
        ).status_code
        == 403
    )


def test_an_api_call_is_stored_as_the_forms_call_is(api, agent, bridge, otp_flow, sends, settings):
    settings.OBD_REDIAL_WARN_MINUTES = 0
    place(api, **otp_call(bridge, otp_flow, name="same"))
    logged_in(agent).post(
        "/calls/new/",
        {
            "bridge": bridge.pk,
            "to": "+91 88671 35123",
            "flow": otp_flow.pk,
            "variables[Name]": "Asha",
            "variables[otp]": "4821",
            "name": "same",
            "interval": "0",
            "idempotency_key": "6b0c8f0e-3f4e-4b7a-9a51-0d2f3c4b5a69",
        },
    )
    sends.run()

    by_api, by_form = CallLog.objects.order_by("id")
    fields = ["status", "to", "bridge_id", "flow_id", "name", "variables", "request_payload"]
    assert [getattr(by_api, f) for f in fields] == [getattr(by_form, f) for f in fields]
    assert by_api.status == CallLog.Status.QUEUED and by_api.sealed_variables == ""
