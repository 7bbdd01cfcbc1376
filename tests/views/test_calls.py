"""The call pages (calls/views.py): the call log and its filters, a call's page with its
outcome, its retry and its audit trail, and the streamed CSV export."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.utils import timezone

from calls.models import MASK, AuditEntry, CallLog, Campaign
from calls.sealing import unseal
from calls.vocabulary import provider_key
from tests.clock import pinned_now
from tests.helpers.answers import QUEUED
from tests.helpers.portal import OTP, audit_shown, call_form, logged_in, place_call, text_of
from tests.helpers.webhooks import deliver, push

# --- the call log ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tail", ["5123", "23", "99", "9", "0"])
def test_the_call_log_finds_calls_by_the_last_digits_of_the_number(
    agent_client, bridge, sound, tail
):
    numbers = ["918867135123", "918867130099", "918867135199", "918867135100", "918867135129"]
    for number in numbers:
        CallLog.objects.create(bridge=bridge, audio=sound, to=number, status="queued")
    found = {c.to for c in agent_client.get("/calls/", {"q": tail}).context["page"].rows}
    assert found == {n for n in numbers if n.endswith(tail)}


def test_the_call_log_keeps_whole_days_between_from_and_to(agent_client, bridge, sound):
    today = timezone.localtime(pinned_now()).replace(hour=12, minute=0, second=0, microsecond=0)
    for days_ago in (9, 5, 4, 3, 1):  # created in that order, as ids grow with time
        CallLog.objects.create(
            bridge=bridge,
            audio=sound,
            to=f"91886713510{days_ago}",
            status="queued",
            created_at=today - timedelta(days=days_ago),
        )
    since, until = (today - timedelta(days=5)).date(), (today - timedelta(days=3)).date()
    rows = agent_client.get("/calls/", {"since": since, "until": until}).context["page"].rows
    assert [c.to for c in rows] == ["918867135103", "918867135104", "918867135105"]


# --- a call's page: its outcome, its retry, its audit trail ---------------------------------------


def test_the_call_page_shows_the_outcome_once_it_arrives(provider_client, call, agent_client):
    before = agent_client.get(call.get_absolute_url())
    deliver(provider_client, push(status="ANSWER"))
    after = agent_client.get(call.get_absolute_url())

    assert (before.status_code, after.status_code) == (200, 200)
    assert ">Queued<" in before.text
    assert ">Answered<" in after.text
    assert ">Answered<" not in before.text


def test_the_timeline_says_what_the_provider_reported_in_plain_words(
    provider_client, call, agent_client
):
    deliver(provider_client, push(status="NOANSWER"))

    html = agent_client.get(call.get_absolute_url()).text

    assert '<strong title="NOANSWER">rang, not answered</strong>' in html


def test_an_error_call_can_be_retried_once_with_its_otp_re_entered(
    agent_client, bridge, otp_flow, real_gateway, settings, sends
):
    settings.MOBTEXTING_API_URL = "http://127.0.0.1:9/api/v2/"  # discard port: refused
    data = call_form(bridge, otp_flow, **{"variables[Name]": "Asha", "variables[otp]": "111111"})
    agent_client.post("/calls/new/", data)
    assert sends.run() == ["error"]
    call = CallLog.objects.get()
    page = agent_client.get(call.get_absolute_url()).content.decode()
    assert "Retry" in page and 'name="variables[otp]"' in page

    settings.MOBTEXTING_API_URL = real_gateway.url  # the provider is back
    real_gateway.answer(200, QUEUED)
    retried = agent_client.post(f"/calls/{call.pk}/retry/", {"variables[otp]": "222222"})
    assert real_gateway.requests == []  # the request only queued it
    call.refresh_from_db()
    assert call.status == "pending" and unseal(call.sealed_variables) == {"otp": "222222"}
    assert "Retrying: sending it again." in text_of(agent_client.get(retried["Location"]).text)
    assert sends.run() == ["queued"]
    assert [r.json()["variables[otp]"] for r in real_gateway.requests] == ["222222"]
    call.refresh_from_db()
    assert call.variables == {"Name": "Asha", "otp": MASK} and call.sealed_variables == ""
    again = agent_client.post(f"/calls/{call.pk}/retry/", {"variables[otp]": "333333"}, follow=True)
    assert "Only a call that never reached the provider can be retried." in again.text
    assert sends.run() == [] and len(real_gateway.requests) == 1


def test_a_queued_call_cannot_be_retried(agent_client, bridge, sound, sends):
    agent_client.post("/calls/new/", call_form(bridge, audio=sound))
    assert sends.run() == ["queued"]
    call = CallLog.objects.get()
    agent_client.post(f"/calls/{call.pk}/retry/", {})
    call.refresh_from_db()
    assert call.status == "queued" and CallLog.objects.count() == 1
    assert sends.run() == []


def test_placing_and_retrying_a_call_are_audited_and_shown_on_the_call_page(
    agent, supervisor, bridge, otp_flow, sends
):
    call = place_call(logged_in(agent), bridge, otp_flow, to="+91 98765 40009")  # unreachable
    assert sends.run() == [CallLog.Status.ERROR]

    retried = logged_in(supervisor).post(f"/calls/{call.pk}/retry/", {"variables[otp]": OTP})
    assert retried.status_code == 302

    entries = list(AuditEntry.objects.filter(call=call).values_list("actor__username", "action"))
    assert entries == [("supervisor", "retried"), ("agent", "placed")]
    page = logged_in(agent).get(call.get_absolute_url()).content.decode()
    assert audit_shown(page) == ["supervisor retried the call", "agent placed the call"]


# --- the streamed CSV export ----------------------------------------------------------------------


def export(client: Client, **filters: str) -> tuple[StreamingHttpResponse, list[list[str]]]:
    response = client.get("/calls/export.csv", filters)
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return response, list(csv.reader(io.StringIO(text)))


def test_the_export_is_a_streamed_csv_attachment_with_the_documented_columns(
    agent_client, bridge, sound
):
    CallLog.objects.create(bridge=bridge, to="918867135123", audio=sound)
    response, rows = export(agent_client)
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert re.fullmatch(r'attachment; filename="[\w.-]+\.csv"', response["Content-Disposition"])
    assert rows[0][:2] == ["id", "created_at (Asia/Kolkata)"]
    assert len(rows) == 2 and all(len(row) == len(rows[0]) for row in rows)


def test_the_export_masks_the_otp_of_a_call_placed_through_the_form(agent_client, bridge, otp_flow):
    call = place_call(agent_client, bridge, otp_flow)
    _, rows = export(agent_client)
    raw = "\n".join(",".join(row) for row in rows)
    assert OTP not in raw
    (row,) = rows[1:]
    exported = dict(zip(rows[0], row, strict=True))
    assert exported["id"] == str(call.pk)
    assert (exported["variables[Name]"], exported["variables[otp]"]) == ("Asha", MASK)
    assert exported["placed_by"]  # the agent who placed it


@pytest.fixture
def export_calls(bridge, sound) -> dict[str, CallLog]:
    campaign = Campaign.objects.create(name="November", bridge=bridge, audio=sound, pace=2)

    def call(to: str, status: str, campaign=None) -> CallLog:
        return CallLog.objects.create(
            bridge=bridge,
            to=to,
            audio=sound,
            status=status,
            campaign=campaign,
            submitted_at=pinned_now(),
        )

    return {
        "campaign": campaign,
        "alone answered": call("918867135123", "answered"),
        "campaign busy": call("918867135124", "busy", campaign),
        "campaign answered": call("918867135124", "answered", campaign),
    }


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"alone answered", "campaign busy", "campaign answered"}),
        ({"status": "answered"}, {"alone answered", "campaign answered"}),
        ({"q": "+91 88671 35124"}, {"campaign busy", "campaign answered"}),
        ({"q": "35123"}, {"alone answered"}),
        ({"campaign": "{campaign}"}, {"campaign busy", "campaign answered"}),
        ({"campaign": "{campaign}", "status": "busy"}, {"campaign busy"}),
    ],
)
def test_the_export_honours_the_call_list_filters(agent_client, export_calls, filters, expected):
    filters = {k: v.format(campaign=export_calls["campaign"].pk) for k, v in filters.items()}
    _, rows = export(agent_client, **filters)
    exported = {int(row[0]) for row in rows[1:]}
    assert exported == {export_calls[name].pk for name in expected}


def test_an_export_with_a_mistyped_day_exports_nothing_and_says_why(agent_client, export_calls):
    response = agent_client.get("/calls/export.csv", {"status": "busy", "since": "32 Dec 2026"})

    assert not response.streaming  # not a single call, let alone every one
    assert response.status_code == 302
    assert response["Location"] == "/calls/?status=busy&since=32+Dec+2026"
    log = text_of(agent_client.get(response["Location"]).content.decode())
    assert "Nothing was exported: a filter could not be read." in log
    assert "From “32 Dec 2026” is not applied: Enter a day like 27 Nov 2026." in log


# --- statuses that say one thing, in words ---------------------------------------------------------


def outcome_card(client: Client, call: CallLog) -> str:
    html = client.get(call.get_absolute_url()).content.decode()
    return re.search(r'<section class="card outcome">.*?</section>', html, re.S)[0]


def test_a_row_withdrawn_with_its_campaign_does_not_wear_the_hung_up_badge(
    agent, make_call, campaign
):
    campaign.calls.add(make_call(status="pending", provider_id=""), bulk=False)
    assert campaign.stop()
    hung_up = make_call(status="canceled", provider_status="CANCEL", submitted_at=pinned_now())
    client = logged_in(agent)

    withdrawn = outcome_card(client, campaign.calls.get())
    canceled = outcome_card(client, hung_up)

    assert '<span class="status status-withdrawn"' in withdrawn
    assert text_of(withdrawn).startswith("Outcome Not sent (withdrawn)")
    assert '<span class="status status-canceled"' in canceled
    assert text_of(canceled).startswith("Outcome Hung up")
    assert "Caller hung up before the customer answered" in text_of(canceled)


def test_a_call_settled_after_a_timeout_shows_its_outcome_without_no_answer_from_the_provider(
    agent, make_call
):
    call = make_call(
        status="answered",
        provider_status="ANSWER",
        error="No answer from the provider (read timeout). The call may or may not have been "
        "placed, so it is not sent again; its outcome will come from the provider's webhook or "
        "a status look-up.",
    )

    card = text_of(outcome_card(logged_in(agent), call))

    assert card.startswith("Outcome Answered")
    assert "No answer" not in card and "no answer" not in card
    assert "it reported the outcome above later" in card


def test_provider_words_such_as_congestion_are_shown_in_plain_language(agent, make_call):
    call = make_call(status="failed", provider_status="CONGESTION", submitted_at=pinned_now())

    card = outcome_card(logged_in(agent), call)

    assert "Network congestion" in text_of(card)
    assert ">CONGESTION<" not in card and 'title="network congestion"' in card


# --- the call log: what it shows, by itself ------------------------------------------------------


def test_the_newest_page_of_the_call_log_redraws_itself_and_an_older_page_does_not(
    agent_client, bridge, sound
):
    for _ in range(3):
        CallLog.objects.create(
            bridge=bridge,
            audio=sound,
            to="918867135123",
            status="answered",
            submitted_at=pinned_now(),
        )
    newest = agent_client.get("/calls/").text
    older = agent_client.get("/calls/", {"before": CallLog.objects.last().pk + 1}).text

    assert 'hx-trigger="every 5s"' in newest
    assert "New calls appear here by themselves." in newest
    assert "hx-trigger" not in older.split('id="results"', 1)[1].split(">", 1)[0]


def test_a_campaigns_rows_not_sent_yet_show_only_under_that_campaign(
    agent_client, bridge, sound, campaign
):
    single = CallLog.objects.create(
        bridge=bridge,
        audio=sound,
        to="918867135123",
        status="queued",
        submitted_at=pinned_now(),
    )
    sent = CallLog.objects.create(
        bridge=bridge,
        audio=sound,
        to="918867135124",
        status="busy",
        campaign=campaign,
        submitted_at=pinned_now(),
    )
    waiting = CallLog.objects.create(
        bridge=bridge, audio=sound, to="918867135125", status="pending", campaign=campaign
    )

    def shown(**filters: object) -> list[CallLog]:
        return agent_client.get("/calls/", filters).context["page"].rows

    assert shown() == [sent, single]
    assert shown(campaign=campaign.pk) == [waiting, sent]
    assert shown(kind="single") == [single]
    assert shown(kind="campaign") == [sent]
    page = agent_client.get("/calls/", {"campaign": campaign.pk}).text
    assert "not sent" in page and "November reminders" in page
    assert "a campaign's rows not sent yet appear only when you filter" in page


def test_a_campaign_row_shows_when_it_was_dialled_not_when_it_was_uploaded(
    agent_client, bridge, sound, campaign
):
    uploaded, dialled = pinned_now() - timedelta(days=2), pinned_now()
    CallLog.objects.create(
        bridge=bridge,
        audio=sound,
        to="918867135124",
        status="busy",
        campaign=campaign,
        created_at=uploaded,
        submitted_at=dialled,
    )
    page = agent_client.get("/calls/").text
    local = "%Y-%m-%dT%H:%M:%S"
    assert f'datetime="{timezone.localtime(dialled):{local}}' in page
    assert f"{timezone.localtime(uploaded):{local}}" not in page


# --- searching and the filters in use -------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    ["(+91) 98765-40004", "098765 40004", "+91 98765 40004", "40004", "0091 98765 40004"],
)
def test_the_call_log_finds_a_number_however_it_is_typed(agent_client, bridge, sound, typed):
    wanted = CallLog.objects.create(bridge=bridge, audio=sound, to="919876540004", status="busy")
    CallLog.objects.create(bridge=bridge, audio=sound, to="919876540005", status="busy")
    assert agent_client.get("/calls/", {"q": typed}).context["page"].rows == [wanted]


@pytest.mark.parametrize(
    ("typed", "found"),
    [("3B69ACA9", True), ("3b69aca9-3B55", True), ("39888925", True), ("b69", False)],
)
def test_the_call_log_finds_a_provider_id_by_its_start_in_any_case(
    agent_client, bridge, sound, typed, found
):
    wanted = CallLog.objects.create(
        bridge=bridge,
        audio=sound,
        to="918867135123",
        status="queued",
        provider_id="3B69ACA9-3B55-4E2D-BFE0-02B910DBE156",
        provider_key=provider_key("3B69ACA9-3B55-4E2D-BFE0-02B910DBE156"),
    )
    numeric = CallLog.objects.create(
        bridge=bridge,
        audio=sound,
        to="918867135124",
        status="queued",
        provider_id="39888925-718e-43bb-a8b1-d4a3c0de0001",
        provider_key=provider_key("39888925-718e-43bb-a8b1-d4a3c0de0001"),
    )
    rows = agent_client.get("/calls/", {"q": typed}).context["page"].rows
    expected = {"39888925": [numeric]}.get(typed, [wanted] if found else [])
    assert rows == expected


def test_the_filters_in_use_are_chips_that_each_remove_one(agent_client, bridge, sound):
    page = agent_client.get("/calls/", {"status": "busy", "q": "40004", "before": "9"}).text
    chips = re.findall(r'<a class="chip" href="\?([^"]*)"[^>]*>([^<]*)<', page)
    assert chips == [("status=busy", "Search: 40004 "), ("q=40004", "Status: Busy ")]
    assert ">Clear all</a>" in page
    assert 'class="chip"' not in agent_client.get("/calls/").text


# --- a call's timeline keeps every try ------------------------------------------------------------


def test_a_retried_call_keeps_its_first_failed_try_on_its_page(agent, bridge, otp_flow, sends):
    client = logged_in(agent)
    call = place_call(client, bridge, otp_flow, to="+91 98765 40009")  # unreachable
    sends.run()
    call.refresh_from_db()
    first_try, first_error = call.submitted_at, call.error
    assert call.status == CallLog.Status.ERROR and first_error

    client.post(f"/calls/{call.pk}/retry/", {"variables[otp]": OTP})
    sends.run()

    (kept,) = call.failed_submissions.all()
    assert (kept.submitted_at, kept.error) == (first_try, first_error)
    call.refresh_from_db()
    assert call.submitted_at > first_try
    timeline = client.get(call.get_absolute_url()).text.split("<h2>Timeline</h2>", 1)[1]
    timeline = timeline.split("</ol>", 1)[0]
    assert timeline.count("Tried to send") == 2  # the first try, and the retry
    assert first_error in timeline


def test_a_call_that_cannot_be_retried_keeps_no_try(agent_client, bridge, sound):
    call = CallLog.objects.create(bridge=bridge, audio=sound, to="918867135123", status="queued")
    assert not call.reopen_for_retry({})
    assert not call.failed_submissions.exists()


def test_a_mistyped_day_is_named_and_the_other_filters_still_apply(agent_client, make_call):
    make_call(to="918867135123", submitted_at=pinned_now())
    make_call(provider_id="other-id", to="919876543210", submitted_at=pinned_now())

    response = agent_client.get("/calls/", {"q": "35123", "since": "garbage"})

    rows = re.findall(r'id="call-(\d+)"', response.text)
    assert len(rows) == 1  # the search still applies
    assert "Enter a day like 27 Nov 2026." in response.text
    assert "Search: 35123" in text_of(response.text)


def test_a_mistyped_day_sent_by_htmx_is_named_in_the_results_as_not_applied(
    agent_client, make_call
):
    make_call(to="918867135123", submitted_at=pinned_now())
    make_call(provider_id="other-id", to="919876543210", submitted_at=pinned_now())

    response = agent_client.get(
        "/calls/", {"q": "35123", "since": "32 Dec 2026"}, headers={"HX-Request": "true"}
    )

    shown = text_of(response.text)
    assert 'id="results"' in response.text  # the part htmx swaps in
    assert "From “32 Dec 2026” is not applied: Enter a day like 27 Nov 2026." in shown
    assert "The other filters are applied." in shown
    assert len(re.findall(r'id="call-(\d+)"', response.text)) == 1  # the search still applies
    # The Export link outside the results follows the filters the log now shows.
    assert re.search(r'<a id="export-csv"[^>]*hx-swap-oob="true"', response.text)
    assert "since=32+Dec+2026" in response.text


def test_a_mistyped_day_alone_says_the_log_is_not_filtered(agent_client, make_call):
    make_call(submitted_at=pinned_now())

    response = agent_client.get("/calls/", {"since": "32 Dec 2026"}, headers={"HX-Request": "true"})

    assert "No filter is applied: every call is listed." in text_of(response.text)


def test_a_day_chip_is_written_as_the_pages_write_a_day(agent_client, db):
    response = agent_client.get("/calls/", {"since": "2026-11-27"})

    assert "From: 27 Nov 2026" in text_of(response.text)


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_a_day_at_the_calendars_ends_is_named_not_a_server_error(agent_client, db, day):
    for name in ("since", "until"):
        response = agent_client.get("/calls/", {name: day})

        assert response.status_code == 200
        assert "Enter a day between" in response.text


def test_the_placed_by_filter_lists_people_by_name_whatever_order_they_were_saved_in(
    agent_client, django_user_model
):
    for name in ("zara", "mohan", "asha"):
        django_user_model.objects.create_user(name, password="pw")
    django_user_model.objects.filter(username="mohan").update(last_login=timezone.now())

    page = agent_client.get("/calls/").content.decode()
    select = page[page.index('name="placed_by"') :]
    select = select[: select.index("</select>")]
    names = re.findall(r'<option value="\d+"[^>]*>([^<]+)</option>', select)
    assert names == sorted(names) and {"asha", "mohan", "zara"} <= set(names)
