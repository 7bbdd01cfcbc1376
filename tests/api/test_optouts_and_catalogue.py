"""The do-not-call list (calls/api/optouts.py) and the catalogue (calls/api/catalogue.py) over
the API."""

import pytest

from calls.models import AuditEntry, DoNotCall

pytestmark = pytest.mark.django_db


def post(api, path, **body):
    return api.post(path, body, content_type="application/json")


def test_a_number_added_is_listed_with_its_reason_and_source_and_audited(api):
    response = post(api, "/api/v1/optouts", number="+91 88671 35123", reason="ticket 4411")

    assert response.status_code == 201
    assert response.json() | {"listed_at": None} == {
        "number": "918867135123",
        "listed": True,
        "reason": "ticket 4411",
        "source": "api",
        "listed_at": None,
    }
    entry = AuditEntry.objects.get()
    assert entry.action == AuditEntry.Action.OPTED_OUT and entry.who == "API key “CRM”"
    assert "ticket 4411" in entry.detail


def test_a_number_already_listed_keeps_its_first_entry(api):
    DoNotCall.objects.create(number="918867135123", reason="asked on the phone")

    response = post(api, "/api/v1/optouts", number="918867135123", reason="again")

    assert response.status_code == 200 and response.json()["reason"] == "asked on the phone"
    assert not AuditEntry.objects.exists()


def test_a_number_is_checked_and_removed_with_a_reason(api):
    DoNotCall.objects.create(number="918867135123")

    assert post(api, "/api/v1/optouts/check", number="+91 88671 35123").json()["listed"] is True
    removed = post(api, "/api/v1/optouts/remove", number="+91 88671 35123", reason="consented")

    assert removed.status_code == 200 and removed.json()["listed"] is False
    assert not DoNotCall.objects.exists()
    entry = AuditEntry.objects.get()
    assert entry.action == AuditEntry.Action.OPT_OUT_REMOVED and "consented" in entry.detail


def test_a_number_that_is_not_one_is_refused_in_the_pages_words(api):
    response = post(api, "/api/v1/optouts", number="12345")

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "number",
            "message": "12345 is not a valid phone number with country code "
            "(for example +91 88671 35123).",
        }
    ]


def test_the_catalogue_lists_bridges_flows_with_variables_and_keys_and_audio(
    api, bridge, otp_flow, sound
):
    otp_flow.choices = {"1": "confirm", "9": "stop calling me"}
    otp_flow.stop_key = "9"
    otp_flow.save()

    [flow] = api.get("/api/v1/catalogue/flows").json()
    [line] = api.get("/api/v1/catalogue/bridges").json()
    [audio] = api.get("/api/v1/catalogue/audio").json()

    assert flow["variables"] == [
        {"name": "Name", "sensitive": False},
        {"name": "otp", "sensitive": True},
    ]
    assert flow["choices"] == {"1": "confirm", "9": "stop calling me"} and flow["stop_key"] == "9"
    assert line["number"] == "918068287602" and audio["sound_id"] == sound.sound_id
