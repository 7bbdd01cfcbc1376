"""Campaigns over the API (calls/api/campaigns.py): made from JSON rows or a CSV through the
campaign form, read by a worker like an upload, started, paused, resumed and stopped through
the page's own actions, read with their progress and keypress results."""

import pytest
from django.test import TestCase

from calls.models import AuditEntry, CallLog, Campaign
from tests.helpers.campaigns import run_queued_imports
from tests.helpers.portal import logged_in

pytestmark = pytest.mark.django_db


def make(api, **body):
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = api.post("/api/v1/campaigns", body, content_type="application/json")
    run_queued_imports()
    return response


def rows():
    return [
        {"number": "+91 88671 35123", "Name": "Asha", "otp": "1111"},
        {"number": "+91 88671 35124", "Name": "Ravi", "otp": "2222"},
        {"number": "12345", "Name": "Nobody", "otp": "3333"},
    ]


def test_a_campaign_from_json_rows_is_imported_by_a_worker_and_audited_under_the_key(
    api, bridge, otp_flow
):
    response = make(api, name="Dec OTPs", bridge=bridge.pk, flow=otp_flow.pk, rows=rows())

    assert response.status_code == 202 and response.json()["status"] == "importing"
    campaign = Campaign.objects.get()
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.calls.count() == 2 and campaign.rows_set_aside == 1
    entry = AuditEntry.objects.get(action=AuditEntry.Action.CREATED)
    assert entry.who == "API key “CRM”"


def test_a_campaign_made_through_the_api_and_its_calls_are_the_keys(
    api, api_key, agent, bridge, otp_flow
):
    make(api, name="Dec OTPs", bridge=bridge.pk, flow=otp_flow.pk, rows=rows())

    campaign = Campaign.objects.get()
    assert campaign.api_key == api_key[0] and campaign.made_by == "API key “CRM”"
    assert set(campaign.calls.values_list("api_key", flat=True)) == {api_key[0].pk}
    upload = AuditEntry.objects.get(action=AuditEntry.Action.UPLOADED)
    assert upload.who == "API key “CRM”"
    client = logged_in(agent)
    assert "API key “CRM”" in client.get("/campaigns/").content.decode()
    assert "API key “CRM”" in client.get(f"/calls/?campaign={campaign.pk}").content.decode()


def test_a_campaign_from_a_csvs_text(api, bridge, sound):
    make(api, name="Reminders", bridge=bridge.pk, audio=sound.pk, csv="number\n+918867135123\n")

    assert Campaign.objects.get().calls.count() == 1


def test_a_campaign_is_refused_in_the_forms_words(api, bridge, otp_flow, sound):
    response = make(api, name="", bridge=bridge.pk, rows=rows(), pace="0")

    assert response.status_code == 422
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert errors["name"] == "This field is required."
    assert errors["pace"].startswith("The pace must be more than 0 calls per second")
    assert "csv_file" not in errors  # the page's "choose the file again": no API field
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    "name", ["Dec\r\nX-Forged: 1", "Dec\tOTPs", "Dec\x1b[31mOTPs", "Dec\x85OTPs"]
)
def test_a_campaign_name_on_more_than_one_line_is_refused_in_words(api, bridge, sound, name):
    response = make(api, name=name, bridge=bridge.pk, audio=sound.pk, csv="number\n+918867135123\n")

    assert response.status_code == 422
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert errors["name"] == "Write the name on one line, without tabs or control characters."
    assert not Campaign.objects.exists()


def test_rows_or_csv_but_something_to_call(api, bridge, sound):
    assert make(api, name="x", bridge=bridge.pk, audio=sound.pk).status_code == 422
    both = make(api, name="x", bridge=bridge.pk, audio=sound.pk, rows=rows(), csv="number\n")
    assert both.status_code == 422


def test_a_campaign_whose_import_failed_says_why_as_gone_not_as_never_there(api, bridge, otp_flow):
    made = make(api, name="Dec OTPs", bridge=bridge.pk, flow=otp_flow.pk, csv="number\n1\n")
    campaign_id = made.json()["id"]

    for response in (
        api.get(f"/api/v1/campaigns/{campaign_id}"),
        api.post(f"/api/v1/campaigns/{campaign_id}/start"),
    ):
        assert response.status_code == 410
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["detail"].startswith(
            "api.csv was not imported: No column for the flow's variables {Name}, {otp}"
        )
    assert api.get("/api/v1/campaigns/999").status_code == 404


def test_start_pause_resume_stop_through_the_pages_actions(api, bridge, otp_flow):
    campaign_id = make(api, name="Dec", bridge=bridge.pk, flow=otp_flow.pk, rows=rows()).json()[
        "id"
    ]

    def do(action):
        return api.post(f"/api/v1/campaigns/{campaign_id}/{action}")

    assert do("start").json()["status"] == "running"
    assert do("pause").json()["status"] == "paused"
    refused = do("pause")
    assert refused.status_code == 409
    assert refused.json()["detail"] == "A paused campaign cannot pause."
    assert do("resume").json()["status"] == "running"
    assert do("stop").json()["status"] == "stopped"
    assert api.post(f"/api/v1/campaigns/{campaign_id}/explode").status_code == 422
    actions = AuditEntry.objects.filter(campaign_id=campaign_id).values_list("action", flat=True)
    assert set(actions) >= {"started", "paused", "resumed", "stopped"}


def test_a_campaign_is_read_with_its_progress_and_keypresses(api, bridge, otp_flow):
    otp_flow.choices = {"1": "confirm"}
    otp_flow.save()
    campaign_id = make(api, name="Dec", bridge=bridge.pk, flow=otp_flow.pk, rows=rows()).json()[
        "id"
    ]
    answered = CallLog.objects.filter(campaign_id=campaign_id).first()
    CallLog.objects.filter(pk=answered.pk).update(
        status=CallLog.Status.ANSWERED, keypresses="1", keypresses_at=answered.created_at
    )

    body = api.get(f"/api/v1/campaigns/{campaign_id}").json()

    assert body["total"] == 2 and body["counts"]["answered"] == 1
    first = body["keypresses"][0]
    assert first == {"key": "1", "name": "confirm", "calls": 1, "share": 100.0}
    assert [c["id"] for c in api.get("/api/v1/campaigns").json()] == [campaign_id]
    assert api.get("/api/v1/campaigns/999").status_code == 404
