"""The campaign pages (calls/views.py): a draft from a CSV and its report, the rejected rows
and their upload again, the actions, who may see and run campaigns, and the audit trail."""

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_tasks_db.models import DBTaskResult

from calls.models import CallLog, Campaign
from calls.tasks import dispatch_campaign
from tests.helpers.campaigns import BAD_NUMBER, LATIN_1, make_campaign, statuses, upload
from tests.helpers.portal import audit_shown, campaign_form, logged_in, text_of

VIEW_CSV = (
    b"number,Name,otp,city\n918867135123,Asha,1,Pune\n12345,Ravi,2,Goa\n918867135124,Dee,3,Delhi\n"
)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def page_title(html: str) -> str:
    return text_of(re.search(r"<title>(.*?)</title>", html, re.S)[1])


def test_a_supervisor_creates_a_draft_from_a_csv_and_sees_its_report(supervisor, bridge, otp_flow):
    client = logged_in(supervisor)

    response = client.post("/campaigns/new/", campaign_form(bridge, otp_flow, VIEW_CSV))

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/{campaign.pk}/"
    assert (campaign.status, campaign.created_by, campaign.flow) == ("draft", supervisor, otp_flow)
    page = client.get(response["Location"])
    assert messages_of(page) == ["2 row(s) ready to call, 1 rejected."]
    assert page.context["progress"]["counts"] == {"pending": 2}
    assert [(row.line, row.reason) for row in page.context["rejected"]] == [(3, BAD_NUMBER)]
    assert page.context["campaign"].columns == [
        ["number", "number"],
        ["Name", "{Name}"],
        ["otp", "{otp}"],
        ["city", ""],
    ]
    html = page.content.decode()
    assert BAD_NUMBER in html and "12345" in html
    assert f'href="/campaigns/{campaign.pk}/rejected.csv"' in html


def test_an_unreadable_csv_leaves_no_draft_behind_and_says_why(supervisor, bridge, otp_flow):
    response = logged_in(supervisor).post(
        "/campaigns/new/", campaign_form(bridge, otp_flow, LATIN_1)
    )

    assert response.status_code == 200
    assert not Campaign.objects.exists() and not CallLog.objects.exists()
    assert messages_of(response) == [
        "The file is not UTF-8 text: save it as “CSV UTF-8” and upload again."
    ]


def test_the_rejected_rows_download_as_csv_with_their_reason(supervisor, bridge, sound):
    campaign = make_campaign(bridge, audio=sound)
    upload(
        campaign,
        "number,Name,city\n12345,Ravi,Goa\n+91 88671 35123,Asha,Pune\n918867135123,Dup,Delhi\n",
    )

    response = logged_in(supervisor).get(f"/campaigns/{campaign.pk}/rejected.csv")

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        f'attachment; filename="campaign-{campaign.pk}-rejected.csv"'
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["number", "Name", "city", "reason"],
        ["12345", "Ravi", "Goa", BAD_NUMBER],
        ["918867135123", "Dup", "Delhi", "Duplicate number in this campaign"],
    ]


def test_fixed_rejected_rows_can_be_uploaded_again_to_the_draft(supervisor, bridge, sound):
    campaign = make_campaign(bridge, audio=sound)
    upload(campaign, "number,Name\n12345,Ravi\n918867135123,Asha\n")
    client = logged_in(supervisor)
    download = b"".join(client.get(f"/campaigns/{campaign.pk}/rejected.csv").streaming_content)
    fixed = download.replace(b"12345,", b"+91 88671 35124,", 1)

    response = client.post(
        f"/campaigns/{campaign.pk}/upload/",
        {"csv_file": SimpleUploadedFile("fixed.csv", fixed, content_type="text/csv")},
    )

    assert response.status_code == 302 and response["Location"] == campaign.get_absolute_url()
    assert sorted(campaign.calls.values_list("to", flat=True)) == ["918867135123", "918867135124"]
    assert messages_of(client.get(response["Location"])) == ["1 row(s) ready to call, 0 rejected."]


def test_rows_cannot_be_added_once_the_campaign_has_started(supervisor, campaign):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n")
    assert campaign.start()

    response = logged_in(supervisor).post(
        f"/campaigns/{campaign.pk}/upload/",
        {"csv_file": SimpleUploadedFile("more.csv", b"number,Name,otp\n918867135124,Ravi,2\n")},
    )

    assert response.status_code == 404
    assert campaign.calls.count() == 1


# --- actions --------------------------------------------------------------------------------------


def dispatch_tasks(campaign: Campaign) -> list:
    tasks = DBTaskResult.objects.filter(task_path=dispatch_campaign.module_path)
    return [task.args_kwargs["args"] for task in tasks]


def test_a_supervisor_starts_pauses_resumes_and_cancels_from_the_page(
    supervisor, campaign, settings
):
    settings.OBD_CAMPAIGN_DISPATCHERS = 2
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n918867135124,Ravi,2\n")
    client = logged_in(supervisor)

    def act(action: str) -> str:
        response = client.post(f"/campaigns/{campaign.pk}/{action}/")
        assert response.status_code == 302 and response["Location"] == campaign.get_absolute_url()
        campaign.refresh_from_db()
        return campaign.status

    assert act("start") == "running"
    assert campaign.started_at is not None
    assert dispatch_tasks(campaign) == [[campaign.pk]] * 2
    assert act("pause") == "paused"
    assert act("resume") == "running"
    assert dispatch_tasks(campaign) == [[campaign.pk]] * 4
    assert act("cancel") == "canceled"
    assert set(statuses(campaign)) == {"canceled"}


def test_an_action_the_state_does_not_allow_changes_nothing_and_says_so(supervisor, campaign):
    client = logged_in(supervisor)

    response = client.post(f"/campaigns/{campaign.pk}/pause/", follow=True)

    campaign.refresh_from_db()
    assert campaign.status == "draft"
    assert messages_of(response) == ["A draft campaign cannot pause."]
    assert dispatch_tasks(campaign) == []


def test_an_unknown_action_is_not_found(supervisor, campaign):
    client = Client(raise_request_exception=False)
    client.force_login(supervisor)

    response = client.post(f"/campaigns/{campaign.pk}/explode/")

    assert response.status_code == 404


CAMPAIGN_ROUTES = {
    "list": ("get", "/campaigns/"),
    "detail": ("get", "/campaigns/{pk}/"),
    "rejected": ("get", "/campaigns/{pk}/rejected.csv"),
    "new page": ("get", "/campaigns/new/"),
    "create": ("post", "/campaigns/new/"),
    "upload": ("post", "/campaigns/{pk}/upload/"),
    "start": ("post", "/campaigns/{pk}/start/"),
    "cancel": ("post", "/campaigns/{pk}/cancel/"),
}


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("agent", {"list", "detail", "rejected"}), ("outsider", set())],
)
def test_who_may_see_and_who_may_run_campaigns(request, campaign, role, allowed):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n")
    client = logged_in(request.getfixturevalue(role))

    for name, (method, path) in CAMPAIGN_ROUTES.items():
        response = getattr(client, method)(path.format(pk=campaign.pk))
        assert response.status_code == (200 if name in allowed else 403), name

    campaign.refresh_from_db()
    assert campaign.status == "draft" and Campaign.objects.count() == 1
    assert dispatch_tasks(campaign) == []


# --- the audit trail ------------------------------------------------------------------------------


CAMPAIGN_CSV = b"number,Name,otp\n+918867135123,Asha,1111\n+918867135124,Ravi,2222\n"


def test_a_campaign_s_life_is_audited_and_shown_on_its_page(supervisor, bridge, otp_flow):
    client = logged_in(supervisor)
    response = client.post(
        "/campaigns/new/", campaign_form(bridge, otp_flow, CAMPAIGN_CSV, name="November")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get()
    for action in ("start", "pause", "resume", "cancel"):
        assert client.post(f"/campaigns/{campaign.pk}/{action}/").status_code == 302
    client.post(f"/campaigns/{campaign.pk}/start/")  # refused: a canceled campaign stays so

    entries = list(campaign.audit.values_list("actor__username", "action"))
    assert entries == [
        ("supervisor", action)
        for action in ("canceled", "resumed", "paused", "started", "uploaded", "created")
    ]
    html = client.get(campaign.get_absolute_url()).content.decode()
    assert page_title(html) == "November · OBD Portal"
    assert audit_shown(html) == [
        "supervisor canceled the campaign",
        "supervisor resumed the campaign",
        "supervisor paused the campaign",
        "supervisor started the campaign",
        "supervisor uploaded rows — 2 row(s) ready to call, 0 rejected.",
        "supervisor created the campaign",
    ]
