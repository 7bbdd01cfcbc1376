"""The campaign pages (calls/campaign_views.py): a draft from a CSV (read by a worker while the
page shows how far) and its report, the rows set aside and their upload again, the actions, who may
see and run campaigns, and the audit trail."""

import csv
import io
import re
from datetime import timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from calls.engine.dispatch import dispatch_campaign
from calls.models import CallLog, Campaign, CampaignImport, SetAsideRow
from tests.clock import pinned_now
from tests.helpers.campaigns import (
    BAD_NUMBER,
    LATIN_1,
    make_campaign,
    queued_imports,
    run_queued_imports,
    running_campaign,
    statuses,
    upload,
)
from tests.helpers.portal import audit_shown, campaign_form, logged_in, text_of

VIEW_CSV = (
    b"number,Name,otp,city\n918867135123,Asha,1,Pune\n12345,Ravi,2,Goa\n918867135124,Dee,3,Delhi\n"
)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def page_title(html: str) -> str:
    return text_of(re.search(r"<title>(.*?)</title>", html, re.S)[1])


@pytest.fixture
def post(django_capture_on_commit_callbacks):
    """Post as a browser does; what the request queues on commit is queued."""

    def post(client: Client, path: str, data: dict):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(path, data)

    return post


IMPORTING = {"HX-Request": "true", "HX-Target": "import-progress"}  # the section polling itself


def test_the_upload_answers_at_once_without_reading_a_row(post, supervisor, bridge, otp_flow):
    client = logged_in(supervisor)

    response = post(client, "/campaigns/new/", campaign_form(bridge, otp_flow, VIEW_CSV))

    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{campaign.pk}/"
    assert (campaign.status, campaign.created_by, campaign.flow) == (
        "importing",
        supervisor,
        otp_flow,
    )
    job = CampaignImport.objects.get()
    assert (job.state, bytes(job.content), job.position, job.filename) == (
        "waiting",
        VIEW_CSV,
        0,
        "numbers.csv",
    )
    assert not CallLog.objects.exists() and not SetAsideRow.objects.exists()
    assert queued_imports() == [job.pk]
    page = client.get(response["Location"])
    section = text_of(
        re.search(r'<section id="import-progress".*?</section>', page.content.decode(), re.S)[0]
    )
    assert section.startswith(
        "Progress Importing 0% 0% of numbers.csv (88 bytes) read, waiting for a worker"
    )
    assert "Cancel the import" in section
    assert "Start calling" not in page.content.decode()  # offered once every row is read


def test_a_worker_turns_the_upload_into_a_draft_with_its_report(post, supervisor, bridge, otp_flow):
    client = logged_in(supervisor)
    post(client, "/campaigns/new/", campaign_form(bridge, otp_flow, VIEW_CSV))
    campaign = Campaign.objects.get()

    assert run_queued_imports() == ["done"]

    campaign.refresh_from_db()
    assert campaign.status == "draft" and campaign.rows_set_aside == 1
    assert client.get(campaign.get_absolute_url(), headers=IMPORTING)["HX-Refresh"] == "true"
    page = client.get(campaign.get_absolute_url())
    assert page.context["progress"]["counts"] == {"pending": 2}
    assert [(row.line, row.reason) for row in page.context["set_aside"]] == [(3, BAD_NUMBER)]
    assert page.context["campaign"].columns == [
        ["number", "number"],
        ["Name", "{Name}"],
        ["otp", "{otp}"],
        ["city", ""],
    ]
    html = page.content.decode()
    assert "numbers.csv: 2 rows ready to call, 1 set aside." in text_of(html)
    assert BAD_NUMBER in html and "12345" in html
    assert f'href="/campaigns/{campaign.pk}/set-aside.csv"' in html
    assert f'href="/campaigns/{campaign.pk}/start/confirm/"' in html


def test_the_importing_section_refreshes_itself_with_how_far_the_worker_read(
    supervisor, bridge, otp_flow
):
    campaign = make_campaign(bridge, flow=otp_flow, status="importing")
    job = CampaignImport.receive(campaign, "big.csv", b"x" * 1000, supervisor)
    CampaignImport.objects.filter(pk=job.pk).update(
        state="reading", length=1000, position=340, accepted=3000, set_aside=12
    )

    part = logged_in(supervisor).get(campaign.get_absolute_url(), headers=IMPORTING)

    html = part.content.decode()
    assert html.strip().startswith('<section id="import-progress"') and "<html" not in html
    assert 'hx-trigger="every 1s"' in html
    assert '<progress class="progress" max="100" value="34"' in html
    assert "34% of big.csv (1000 bytes) read: 3,000 rows ready to call, 12 set aside so far." in (
        text_of(html)
    )


def test_cancel_mid_import_leaves_no_campaign_and_the_page_says_so(
    post, supervisor, bridge, otp_flow
):
    client = logged_in(supervisor)
    post(client, "/campaigns/new/", campaign_form(bridge, otp_flow, VIEW_CSV))
    campaign = Campaign.objects.get()

    response = client.post(f"/campaigns/{campaign.pk}/import/cancel/")

    assert response.status_code == 302 and response["Location"] == campaign.get_absolute_url()
    assert (
        "Removing the rows read so far" in client.get(campaign.get_absolute_url()).content.decode()
    )
    assert run_queued_imports() == ["canceled"]
    assert not Campaign.objects.exists() and not CallLog.objects.exists()
    assert client.get(campaign.get_absolute_url(), headers=IMPORTING)["HX-Refresh"] == "true"
    gone = client.get(campaign.get_absolute_url())
    assert gone.status_code == 410
    assert "numbers.csv was not imported: supervisor canceled the import." in text_of(
        gone.content.decode()
    )
    again = client.post(f"/campaigns/{campaign.pk}/import/cancel/", follow=True)
    assert messages_of(again) == ["The import had already ended: nothing to cancel."]


def test_an_unreadable_csv_leaves_no_draft_behind_and_says_why(post, supervisor, bridge, otp_flow):
    client = logged_in(supervisor)
    response = post(client, "/campaigns/new/", campaign_form(bridge, otp_flow, LATIN_1))
    assert response.status_code == 302

    assert run_queued_imports() == ["failed"]

    assert not Campaign.objects.exists() and not CallLog.objects.exists()
    page = client.get(response["Location"])
    assert page.status_code == 410
    assert (
        text_of(page.content.decode()).count(
            "numbers.csv was not imported: The file is not UTF-8 text: save it as “CSV UTF-8” and "
            "upload again."
        )
        == 1
    )
    assert CampaignImport.objects.get().content == b""


def test_a_campaign_that_never_was_is_not_found(supervisor, db):
    assert logged_in(supervisor).get("/campaigns/999/").status_code == 404


def test_the_set_aside_rows_download_as_csv_with_their_reason(supervisor, bridge, sound):
    campaign = make_campaign(bridge, audio=sound)
    upload(
        campaign,
        "number,Name,city\n12345,Ravi,Goa\n+91 88671 35123,Asha,Pune\n918867135123,Dup,Delhi\n",
    )

    response = logged_in(supervisor).get(f"/campaigns/{campaign.pk}/set-aside.csv")

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        f'attachment; filename="campaign-{campaign.pk}-set-aside.csv"'
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows == [
        ["number", "Name", "city", "reason"],
        ["'12345", "Ravi", "Goa", BAD_NUMBER],  # numbers marked as text for spreadsheets
        ["'918867135123", "Dup", "Delhi", "Duplicate number in this campaign"],
    ]


def test_fixed_set_aside_rows_can_be_uploaded_again_to_the_draft(post, supervisor, bridge, sound):
    campaign = make_campaign(bridge, audio=sound)
    upload(campaign, "number,Name\n12345,Ravi\n918867135123,Asha\n")
    client = logged_in(supervisor)
    download = b"".join(client.get(f"/campaigns/{campaign.pk}/set-aside.csv").streaming_content)
    fixed = download.replace(b"'12345,", b"+91 88671 35124,", 1)

    response = post(
        client,
        f"/campaigns/{campaign.pk}/upload/",
        {"csv_file": SimpleUploadedFile("fixed.csv", fixed, content_type="text/csv")},
    )

    assert response.status_code == 302 and response["Location"] == campaign.get_absolute_url()
    campaign.refresh_from_db()
    assert campaign.status == "importing"
    assert run_queued_imports() == ["done"]
    assert sorted(campaign.calls.values_list("to", flat=True)) == ["918867135123", "918867135124"]
    assert not campaign.set_aside_rows.exists()
    page = text_of(client.get(response["Location"]).content.decode())
    assert "fixed.csv: 1 row ready to call, 0 set aside." in page


def test_a_fixed_file_that_fails_leaves_the_draft_as_it_was_and_says_why(
    post, supervisor, bridge, sound
):
    campaign = make_campaign(bridge, audio=sound)
    upload(campaign, "number,Name\n12345,Ravi\n918867135123,Asha\n")
    client = logged_in(supervisor)

    post(
        client,
        f"/campaigns/{campaign.pk}/upload/",
        {"csv_file": SimpleUploadedFile("fixed.csv", b'number\n918867135124\n"broken\n')},
    )
    assert run_queued_imports() == ["failed"]

    campaign.refresh_from_db()
    assert (campaign.status, campaign.rows_set_aside) == ("draft", 1)
    assert list(campaign.calls.values_list("to", flat=True)) == ["918867135123"]
    assert campaign.set_aside_rows.get().line == 2
    page = unescape(text_of(client.get(campaign.get_absolute_url()).content.decode()))
    assert (
        'fixed.csv was not imported: Line 3 opens a quote (") that is never closed: close it or '
        "remove it. Nothing from it was kept." in page
    )


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
    """The dispatch tasks queued, as (campaign, seat)."""
    tasks = DBTaskResult.objects.filter(task_path=dispatch_campaign.module_path)
    return sorted(tuple(task.args_kwargs["args"][:2]) for task in tasks)


def test_a_supervisor_starts_pauses_resumes_and_stops_from_the_page(supervisor, campaign, settings):
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
    assert dispatch_tasks(campaign) == [(campaign.pk, 0), (campaign.pk, 1)]
    assert act("pause") == "paused"
    assert act("resume") == "running"
    # Its two tasks still wait in the queue: resuming adds none (each seat has one).
    assert dispatch_tasks(campaign) == [(campaign.pk, 0), (campaign.pk, 1)]
    assert act("stop") == "stopped"
    assert set(statuses(campaign)) == {"withdrawn"}


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
    "set aside": ("get", "/campaigns/{pk}/set-aside.csv"),
    "new page": ("get", "/campaigns/new/"),
    "create": ("post", "/campaigns/new/"),
    "upload": ("post", "/campaigns/{pk}/upload/"),
    "cancel the import": ("post", "/campaigns/{pk}/import/cancel/"),
    "start": ("post", "/campaigns/{pk}/start/"),
    "stop": ("post", "/campaigns/{pk}/stop/"),
    "ask before start": ("get", "/campaigns/{pk}/start/confirm/"),
    "ask before stop": ("get", "/campaigns/{pk}/stop/confirm/"),
    "sample": ("get", "/campaigns/sample.csv"),
}


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("agent", {"list", "detail", "set aside"}), ("outsider", set())],
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


def test_a_campaign_s_life_is_audited_and_shown_on_its_page(post, supervisor, bridge, otp_flow):
    client = logged_in(supervisor)
    response = post(
        client, "/campaigns/new/", campaign_form(bridge, otp_flow, CAMPAIGN_CSV, name="November")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert run_queued_imports() == ["done"]
    campaign = Campaign.objects.get()
    for action in ("start", "pause", "resume", "stop"):
        assert client.post(f"/campaigns/{campaign.pk}/{action}/").status_code == 302
    client.post(f"/campaigns/{campaign.pk}/start/")  # refused: a stopped campaign stays so

    entries = list(campaign.audit.values_list("actor__username", "action"))
    assert entries == [
        ("supervisor", action)
        for action in ("stopped", "resumed", "paused", "started", "uploaded", "created")
    ]
    html = client.get(campaign.get_absolute_url()).content.decode()
    assert page_title(html) == "November · OBD Portal"
    assert audit_shown(html) == [
        "supervisor stopped the campaign",
        "supervisor resumed the campaign",
        "supervisor paused the campaign",
        "supervisor started the campaign",
        "supervisor uploaded rows — 2 rows ready to call, 0 set aside.",
        "supervisor created the campaign",
    ]


# --- asked before starting or stopping -----------------------------------------------------------


def test_starting_is_asked_first_with_the_count_and_how_long_it_takes(supervisor, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(window_start="09:00", window_end="20:00")
    rows = "".join(f"91886713{i:04d},Asha,{i}\n" for i in range(1200))
    upload(campaign, "number,Name,otp\n" + rows)
    client = logged_in(supervisor)

    page = client.get(campaign.get_absolute_url()).content.decode()
    ask = f"/campaigns/{campaign.pk}/start/confirm/"
    assert f'href="{ask}"' in page and 'action="/campaigns/{campaign.pk}/start/"' not in page
    question = client.get(ask).content.decode()

    assert "Start calling 1,200 numbers?" in text_of(question)
    assert (
        "At 2 calls/s this takes about 10 minutes (longer outside 09:00\N{EN DASH}20:00 Asia/Kolkata)."
        in text_of(question)
    )
    assert f'<form method="post" action="/campaigns/{campaign.pk}/start/">' in question
    campaign.refresh_from_db()
    assert campaign.status == "draft" and dispatch_tasks(campaign) == []


def test_stopping_is_asked_first_saying_what_will_not_be_sent(supervisor, campaign):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n918867135124,Ravi,2\n")
    assert campaign.start()
    client = logged_in(supervisor)

    page = client.get(campaign.get_absolute_url()).content.decode()
    ask = f"/campaigns/{campaign.pk}/stop/confirm/"
    assert f'href="{ask}"' in page and 'action="/campaigns/{campaign.pk}/stop/"' not in page
    question = client.get(ask).content.decode()

    assert "Stop “November reminders”?" in text_of(question)
    assert "2 calls not sent yet will never be sent." in text_of(question)
    assert f'<form method="post" action="/campaigns/{campaign.pk}/stop/">' in question
    campaign.refresh_from_db()
    assert campaign.status == "running"


def test_a_question_the_campaign_s_state_makes_moot_is_not_asked(supervisor, campaign):
    assert campaign.start()

    response = logged_in(supervisor).get(f"/campaigns/{campaign.pk}/start/confirm/", follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 302)]
    assert messages_of(response) == ["A running campaign cannot start."]


# --- what the campaign's state says ---------------------------------------------------------------


def progress_text(client: Client, campaign: Campaign) -> str:
    html = client.get(campaign.get_absolute_url()).content.decode()
    return text_of(re.search(r'<section id="progress".*?</section>', html, re.S)[0])


def list_status(client: Client) -> str:
    html = client.get("/campaigns/").content.decode()
    return text_of(re.search(r'<span class="status campaign-[a-z]+">(.*?)</span>', html)[1])


def test_a_finished_campaign_with_calls_awaiting_their_outcome_says_so(supervisor, campaign):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n918867135124,Ravi,2\n")
    campaign.calls.update(status="queued", submitted_at=pinned_now())
    Campaign.objects.filter(pk=campaign.pk).update(status="finished")
    client = logged_in(supervisor)

    assert list_status(client) == "Sent, 2 awaiting outcome"
    assert progress_text(client, campaign).startswith("Progress Sent, 2 awaiting outcome")
    assert "0 of 2 numbers settled, 0 reached, 2 sent and awaiting their outcome." in progress_text(
        client, campaign
    )
    campaign.calls.update(status="answered")
    assert list_status(client) == "Finished"


def test_a_running_campaign_outside_its_calling_window_says_when_it_opens(supervisor, campaign):
    here = pinned_now().astimezone(ZoneInfo("Asia/Kolkata"))
    opens, closes = here + timedelta(hours=2), here + timedelta(hours=3)
    Campaign.objects.filter(pk=campaign.pk).update(
        status="running", window_start=opens.time(), window_end=closes.time()
    )

    said = f"Waiting until {opens:%H:%M} (Asia/Kolkata)"
    client = logged_in(supervisor)
    assert list_status(client) == said
    assert progress_text(client, campaign).startswith(f"Progress {said}")


def test_a_draft_stopped_before_sending_does_not_say_100_percent_settled(supervisor, campaign):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n918867135124,Ravi,2\n")
    assert campaign.stop()
    client = logged_in(supervisor)

    text = progress_text(client, campaign)

    assert "%" not in text and "settled" not in text
    assert text.startswith(
        "Progress Stopped before sending Stopped before any call was sent: 2 numbers not called."
    )
    assert "Not sent (withdrawn) 2" in text
    assert list_status(client) == "Stopped before sending"


# --- words, not codes -----------------------------------------------------------------------------


def test_a_pace_of_zero_is_refused_in_a_sentence(supervisor, bridge, otp_flow):
    response = logged_in(supervisor).post(
        "/campaigns/new/", campaign_form(bridge, otp_flow, VIEW_CSV, pace="0")
    )

    html = response.content.decode()
    assert response.status_code == 200 and not Campaign.objects.exists()
    assert response.context["form"].errors["pace"] == [
        "The pace must be more than 0 calls per second: e.g. 2, or 0.5 for one call every 2 "
        "seconds."
    ]
    assert "campaign_pace_positive" not in html and "onstraint" not in html


def set_aside_section(client: Client, campaign: Campaign) -> str:
    html = client.get(campaign.get_absolute_url()).content.decode()
    return text_of(re.search(r"<h2>Rows set aside.*?</section>", html, re.S)[0])


def test_more_set_aside_rows_than_shown_are_counted_with_their_download(supervisor, campaign):
    upload(campaign, "number,Name,otp\n" + "".join(f"{i},Bad,1\n" for i in range(30)))

    html = logged_in(supervisor).get(campaign.get_absolute_url()).content.decode()

    assert "Showing the first 20 of 30 rows set aside; the download has them all." in text_of(html)
    assert html.count("is not a valid phone number") == 20
    assert f'href="/campaigns/{campaign.pk}/set-aside.csv">Download the 30 rows set aside' in html


def test_upload_it_below_is_said_only_where_the_upload_form_is(supervisor, agent, campaign):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n12345,Bad,2\n")
    supervising, following = logged_in(supervisor), logged_in(agent)
    assert "upload it below" in set_aside_section(supervising, campaign)
    assert "upload it below" not in set_aside_section(following, campaign)

    assert campaign.start()

    assert "upload it below" not in set_aside_section(supervising, campaign)
    assert "upload it in a new campaign" in set_aside_section(supervising, campaign)


# --- a sample CSV and the first rows --------------------------------------------------------------


def test_the_sample_csv_has_the_chosen_flow_s_columns_and_an_example_row(supervisor, otp_flow):
    response = logged_in(supervisor).get(f"/campaigns/sample.csv?flow={otp_flow.pk}")

    assert response["Content-Disposition"] == (
        'attachment; filename="campaign-login-otp-sample.csv"'
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows == [["number", "Name", "otp"], ["'+91 98765 43210", "Asha", "482913"]]


def test_choosing_a_flow_redraws_the_sample_and_its_link(supervisor, otp_flow):
    client = logged_in(supervisor)
    form = client.get("/campaigns/new/").content.decode()
    assert 'href="/campaigns/sample.csv"' in form
    select = re.search(r'<select name="flow"[^>]*>', form)[0]
    assert 'hx-get="/campaigns/new/"' in select and 'hx-target="#csv-sample"' in select

    part = client.get(
        f"/campaigns/new/?flow={otp_flow.pk}",
        headers={"HX-Request": "true", "HX-Target": "csv-sample"},
    ).content.decode()

    assert part.strip().startswith('<div id="csv-sample">') and "<form" not in part
    assert f'href="/campaigns/sample.csv?flow={otp_flow.pk}"' in part
    assert "number,Name,otp" in part and "Download a sample CSV for “Login OTP”" in text_of(part)


def test_the_draft_previews_its_first_rows_with_secrets_masked(post, supervisor, bridge, otp_flow):
    client = logged_in(supervisor)
    rows = "".join(f"91886713512{i},Name{i},48291{i}\n" for i in range(7))
    response = post(
        client,
        "/campaigns/new/",
        campaign_form(bridge, otp_flow, f"number,Name,otp\n{rows}".encode()),
    )
    assert run_queued_imports() == ["done"]

    html = client.get(response["Location"]).content.decode()

    preview = text_of(re.search(r"<h2>First rows to call.*?</section>", html, re.S)[0])
    assert preview.startswith(
        "First rows to call 5 of 7 The first numbers this campaign will call "
        "Number Name otp +91 88671 35120 Name0 ******"
    )
    assert "Name4" in preview and "Name5" not in preview
    assert "482910" not in html


def test_the_forms_tick_boxes_sit_beside_their_names(supervisor, db):
    """A single box in a label with its name; several (calling days, retry on) in a fieldset
    named by its legend (a <label for> cannot name a group of boxes)."""
    html = logged_in(supervisor).get("/campaigns/new/").content.decode()
    assert re.search(r'<label class="check"><input type="checkbox" name="transactional"', html)
    for name, legend in (("calling_days", "Calling days"), ("retry_on", "Retry on")):
        group = re.search(
            rf'<fieldset class="choices"[^>]*>\s*<legend>{legend}</legend>(.*?)</fieldset>',
            html,
            re.S,
        )
        assert group and f'name="{name}"' in group.group(1)
        assert f'<label for="id_{name}">' not in html
    notices = logged_in(supervisor).get("/notices/").content.decode()
    assert '<label class="check"><input type="checkbox" name="notify_low_balance"' in notices


def test_a_running_campaign_says_which_numbers_wait_for_their_calling_hours(supervisor, campaign):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n918867135124,Ravi,2\n")
    assert campaign.start()
    first = campaign.calls.order_by("id").first()
    CallLog.objects.filter(pk=first.pk).update(not_before=pinned_now() + timedelta(hours=5))

    page = text_of(logged_in(supervisor).get(f"/campaigns/{campaign.pk}/").content.decode())

    assert "1 number waits for its calling hours" in page
    assert "1 other is not held up." in page

    listed = text_of(logged_in(supervisor).get("/campaigns/").content.decode())
    assert "waits for calling hours" not in listed  # the other is being called

    # When every number waits, there are no others to speak of; the list says so too.
    CallLog.objects.filter(campaign=campaign).update(not_before=pinned_now() + timedelta(hours=5))
    page = text_of(logged_in(supervisor).get(f"/campaigns/{campaign.pk}/").content.decode())
    assert "2 numbers wait for their calling hours" in page
    assert "not held up" not in page
    listed = text_of(logged_in(supervisor).get("/campaigns/").content.decode())
    assert "Running" in listed and "waits for calling hours: from " in listed


def test_the_list_says_an_importing_campaign_is_reading_its_csv_and_refreshes_itself(
    supervisor, bridge, otp_flow
):
    make_campaign(bridge, flow=otp_flow, status="importing")

    html = logged_in(supervisor).get("/campaigns/").content.decode()

    assert list_status(logged_in(supervisor)) == "Importing"
    assert "Reading its CSV…" in text_of(html)
    assert 'hx-trigger="every 3s"' in html


def test_a_campaign_id_past_the_databases_integers_is_not_found(supervisor):
    client = logged_in(supervisor)
    huge = 10**23

    assert client.get(f"/campaigns/{huge}/").status_code == 404
    assert client.post(f"/campaigns/{huge}/import/cancel/").status_code == 404


def test_the_list_reads_what_running_campaigns_wait_for_in_one_query_for_them_all(
    supervisor, bridge, sound
):
    """However many campaigns run, the list asks the same number of queries."""
    client = logged_in(supervisor)
    running_campaign(bridge, sound)
    with CaptureQueriesContext(connection) as one:
        assert client.get("/campaigns/").status_code == 200
    for _ in range(3):
        running_campaign(bridge, sound)
    with CaptureQueriesContext(connection) as four:
        assert client.get("/campaigns/").status_code == 200

    assert len(four.captured_queries) == len(one.captured_queries)
