"""The call pages (calls/views.py): the call log and its filters, a call's page with its
outcome, its retry and its audit trail, and the streamed CSV export."""

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.utils import timezone

from calls.models import MASK, AuditEntry, CallLog, Campaign
from tests.helpers.portal import OTP, audit_shown, call_form, logged_in, place_call
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
    today = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
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


def test_an_error_call_can_be_retried_once_with_its_otp_re_entered(
    agent_client, bridge, otp_flow, settings
):
    settings.MOBTEXTING_API_TOKEN = "tok"
    settings.MOBTEXTING_API_URL = "http://127.0.0.1:9/api/v2/"  # discard port: refused
    data = call_form(bridge, otp_flow, **{"variables[Name]": "Asha", "variables[otp]": "111111"})
    agent_client.post("/calls/new/", data)
    call = CallLog.objects.get()
    assert call.status == "error"
    page = agent_client.get(call.get_absolute_url()).content.decode()
    assert "Retry" in page and 'name="variables[otp]"' in page
    settings.MOBTEXTING_API_TOKEN = ""  # the provider is back (the sandbox answers)
    agent_client.post(f"/calls/{call.pk}/retry/", {"variables[otp]": "222222"})
    call.refresh_from_db()
    assert call.status == "queued"
    assert call.variables == {"Name": "Asha", "otp": MASK}


def test_a_queued_call_cannot_be_retried(agent_client, bridge, sound):
    agent_client.post("/calls/new/", call_form(bridge, audio=sound))
    call = CallLog.objects.get()
    agent_client.post(f"/calls/{call.pk}/retry/", {})
    call.refresh_from_db()
    assert call.status == "queued" and CallLog.objects.count() == 1


def test_placing_and_retrying_a_call_are_audited_and_shown_on_the_call_page(
    agent, supervisor, bridge, otp_flow
):
    call = place_call(logged_in(agent), bridge, otp_flow, to="+91 98765 40009")  # unreachable
    assert call.status == CallLog.Status.ERROR

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
    text = b"".join(response.streaming_content).decode()
    return response, list(csv.reader(io.StringIO(text)))


def test_the_export_is_a_streamed_csv_attachment_with_the_documented_columns(
    agent_client, bridge, sound
):
    CallLog.objects.create(bridge=bridge, to="918867135123", audio=sound)
    response, rows = export(agent_client)
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert re.fullmatch(r'attachment; filename="[\w.-]+\.csv"', response["Content-Disposition"])
    assert rows[0] == CallLog.EXPORT_COLUMNS
    assert len(rows) == 2 and all(len(row) == len(CallLog.EXPORT_COLUMNS) for row in rows)


def test_the_export_masks_the_otp_of_a_call_placed_through_the_form(agent_client, bridge, otp_flow):
    call = place_call(agent_client, bridge, otp_flow)
    _, rows = export(agent_client)
    raw = "\n".join(",".join(row) for row in rows)
    assert OTP not in raw
    (row,) = rows[1:]
    exported = dict(zip(CallLog.EXPORT_COLUMNS, row, strict=True))
    assert exported["id"] == str(call.pk)
    assert json.loads(exported["variables"]) == {"Name": "Asha", "otp": MASK}
    assert exported["placed_by"]  # the agent who placed it


@pytest.fixture
def export_calls(bridge, sound) -> dict[str, CallLog]:
    campaign = Campaign.objects.create(name="November", bridge=bridge, audio=sound, pace=2)

    def call(to: str, status: str, campaign=None) -> CallLog:
        return CallLog.objects.create(
            bridge=bridge, to=to, audio=sound, status=status, campaign=campaign
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
