"""The CSV import (calls/imports.py): reading the file, the validation report with a line and a
reason for each row set aside, and secrets never stored in clear. Each upload is read by a
worker's run (calls/engine/imports.py) in this process, as a worker would."""

import pytest

from calls.engine import imports as engine
from calls.models import MASK, CallLog, Campaign, DoNotCall, SetAsideRow
from calls.sealing import unseal
from tests.helpers.campaigns import BAD_NUMBER, LATIN_1, make_campaign, number, upload
from tests.helpers.portal import database_dump


def calls_of(campaign: Campaign) -> list[tuple[str, dict]]:
    return [(call.to, call.variables) for call in campaign.calls.order_by("id")]


def rejections(campaign: Campaign) -> list[tuple[int, str]]:
    return list(campaign.set_aside_rows.order_by("line").values_list("line", "reason"))


# --- reading the CSV ------------------------------------------------------------------------------


ASHA = ("918867135123", {"Name": "Aśha", "otp": MASK})


RAVI = ("918867135124", {"Name": "Ravi", "otp": MASK})


TWO_ROWS = "+91 88671 35123,Aśha,111111\n918867135124,Ravi,222222\n"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("number,Name,otp\n" + TWO_ROWS, id="utf-8"),
        pytest.param("\ufeffnumber,Name,otp\n" + TWO_ROWS, id="utf-8 with BOM"),
        pytest.param(
            "number;Name;otp\n+91 88671 35123;Aśha;111111\n918867135124;Ravi;222222\n",
            id="semicolons",
        ),
        pytest.param(
            "\ufeffnumber;Name;otp\r\n+91 88671 35123;Aśha;111111\r\n918867135124;Ravi;222222\r\n",
            id="excel: BOM, semicolons and CRLF",
        ),
        pytest.param("NUMBER,name,OTP\n" + TWO_ROWS, id="header in another case"),
        pytest.param(
            "id,number,city,Name,otp,notes\n"
            "1,+91 88671 35123,Pune,Aśha,111111,x\n2,918867135124,Goa,Ravi,222222,\n",
            id="extra columns",
        ),
        pytest.param(
            "\nnumber,Name,otp\n\n+91 88671 35123,Aśha,111111\n\n , , \n918867135124,Ravi,222222\n\n",
            id="empty lines",
        ),
        pytest.param(
            " number , Name , otp \n +91 88671 35123 , Aśha , 111111 \n918867135124,Ravi,222222\n",
            id="spaces around cells",
        ),
    ],
)
def test_a_readable_csv_becomes_one_pending_call_per_row(campaign, content):
    report = upload(campaign, content)

    assert calls_of(campaign) == [ASHA, RAVI]
    assert (report.accepted, report.set_aside) == (2, 0)
    assert not SetAsideRow.objects.exists()


@pytest.mark.parametrize("column", ["to", "mobile", "phone", "Mobile", "PHONE"])
def test_the_number_column_may_be_called_to_mobile_or_phone(campaign, column):
    upload(campaign, f"{column},Name,otp\n+91 88671 35123,Aśha,1\n")

    assert calls_of(campaign) == [ASHA]
    assert campaign.columns == [[column, "number"], ["Name", "{Name}"], ["otp", "{otp}"]]


def test_extra_columns_are_ignored_and_the_mapping_is_kept_on_the_campaign(campaign):
    upload(campaign, "id,Number,city,name,OTP\n1,918867135123,Pune,Aśha,1\n")
    campaign.refresh_from_db()
    assert campaign.columns == [
        ["id", ""],
        ["Number", "number"],
        ["city", ""],
        ["name", "{Name}"],
        ["OTP", "{otp}"],
    ]
    assert calls_of(campaign) == [ASHA]


def test_an_audio_campaign_needs_only_a_number_column(bridge, sound):
    campaign = make_campaign(bridge, audio=sound)

    upload(campaign, "phone,Name\n+91 88671 35123,Asha\n")

    call = campaign.calls.get()
    assert (call.to, call.variables, call.audio, call.flow) == ("918867135123", {}, sound, None)
    assert call.request_payload["audio"] == sound.sound_id


def many_rows_then(tail: bytes) -> bytes:
    """More rows than one chunk, so some are stored before the bad line is read."""
    rows = "".join(f"{number(i)},N{i},{i}\n" for i in range(engine.ROWS_A_CHUNK + 500))
    return ("number,Name,otp\n" + rows).encode() + tail


def refused(campaign: Campaign, content: str | bytes) -> str:
    """Why the upload was refused: nothing of it stored, the draft as it was."""
    job = upload(campaign, content)
    assert job.state == "failed"
    assert (campaign.status, job.content) == ("draft", b"")
    assert not CallLog.objects.exists()
    assert not SetAsideRow.objects.exists()
    return job.error


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(LATIN_1, id="latin-1"),
        pytest.param(many_rows_then("918867135123,José,1\n".encode("latin-1")), id="late bad byte"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), id="binary"),
    ],
)
def test_a_file_that_is_not_utf8_is_refused_whole_with_a_clear_message(campaign, content):
    assert refused(campaign, content) == (
        "The file is not UTF-8 text: save it as “CSV UTF-8” and upload again."
    )


@pytest.mark.parametrize("content", [b"", b"\n\n  \r\n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused(campaign, content):
    assert refused(campaign, content) == "The file is empty."


@pytest.mark.parametrize(("header", "missing"), [("number,Name", "otp"), ("to,OTP", "Name")])
def test_a_missing_variable_column_is_refused_naming_the_variable(campaign, header, missing):
    assert refused(campaign, f"{header}\n918867135123,x\n") == (
        f"No column for the flow's variable {{{missing}}}: add a column named “{missing}”."
    )


def test_a_file_without_a_number_column_is_refused_naming_the_accepted_names(campaign):
    why = refused(campaign, "phone_number,Name,otp\n918867135123,Asha,1\n")

    assert "No number column" in why
    for name in ("number", "to", "mobile", "phone"):
        assert name in why


def test_a_file_with_only_its_header_is_refused_and_stores_nothing(campaign):
    assert refused(campaign, "number,Name,otp\n\n") == (
        "The file has a header but no rows: add one row per number."
    )


def test_a_bad_line_after_a_stored_chunk_is_refused_naming_its_line(campaign):
    content = many_rows_then(b'918867135123,"Broken,1\n')

    assert refused(campaign, content) == (
        f'Line {engine.ROWS_A_CHUNK + 502} opens a quote (") that is never closed: '
        "close it or remove it."
    )


# --- the validation report ------------------------------------------------------------------------


REPORT_CSV = (
    "number,Name,otp\n"  # line 1
    "+91 88671 35123,Asha,111111\n"  # 2: accepted
    "12345,Ravi,222222\n"  # 3: not a number
    "+91 88671 35124,,333333\n"  # 4: no Name
    "918867135123,Asha again,444444\n"  # 5: the number of line 2
    "+91 88671 35125,Dee,555555\n"  # 6: on the do-not-call list
    "\n"  # 7: blank
    "+91 88671 35126,Eve,\n"  # 8: no otp
    "+91 88671 35127,Fay,777777\n"  # 9: accepted
)


def test_every_row_is_checked_and_a_rejected_row_keeps_its_line_and_reason(campaign):
    DoNotCall.objects.create(number="918867135125", reason="Customer asked on 2026-11-02")

    report = upload(campaign, REPORT_CSV)

    assert (report.accepted, report.set_aside) == (2, 5)
    assert rejections(campaign) == [
        (3, BAD_NUMBER),
        (4, "Missing value for Name"),
        (5, "Duplicate number in this campaign"),
        (6, "On the do-not-call list (Customer asked on 2026-11-02)"),
        (8, "Missing value for otp"),
    ]
    campaign.refresh_from_db()
    assert campaign.rows_set_aside == 5
    row = campaign.set_aside_rows.get(line=5)
    assert (row.values["number"], row.values["Name"]) == ("918867135123", "Asha again")
    assert [to for to, _ in calls_of(campaign)] == ["918867135123", "918867135127"]


def test_a_do_not_call_number_without_a_reason_is_still_named_as_such(campaign):
    DoNotCall.objects.create(number="918867135123")

    upload(campaign, "number,Name,otp\n+91 88671 35123,Asha,1\n")

    assert rejections(campaign) == [(2, "On the do-not-call list")]
    assert not CallLog.objects.exists()


def test_accepted_rows_are_pending_calls_of_the_campaign_with_the_otp_masked(campaign, supervisor):
    upload(campaign, "number,Name,otp\n+91 88671 35123,Asha,482913\n", user=supervisor)

    call = CallLog.objects.get()
    assert (call.status, call.campaign, call.submitted_at) == ("pending", campaign, None)
    assert (call.bridge, call.flow, call.audio) == (campaign.bridge, campaign.flow, None)
    assert (call.name, call.created_by) == ("November reminders", supervisor)
    assert call.variables == {"Name": "Asha", "otp": MASK}
    assert call.request_payload == {
        "bridge": "918068287602",
        "to": "918867135123",
        "flow_id": "24",
        "name": "November reminders",
        "variables[Name]": "Asha",
        "variables[otp]": MASK,
    }
    assert unseal(call.sealed_variables) == {"otp": "482913"}


def test_a_number_already_in_the_campaign_is_a_duplicate_on_a_later_upload(campaign, bridge):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n")
    elsewhere = make_campaign(bridge, flow=campaign.flow)
    upload(elsewhere, "number,Name,otp\n918867135124,Ravi,2\n")

    report = upload(campaign, "number,Name,otp\n+91 88671 35123,Asha,1\n+91 88671 35124,Ravi,2\n")

    assert (report.accepted, report.set_aside) == (1, 1)
    assert rejections(campaign) == [(2, "Duplicate number in this campaign")]
    assert [to for to, _ in calls_of(campaign)] == ["918867135123", "918867135124"]


@pytest.mark.parametrize("before", ["", "\n", "\n\n"], ids=["none", "one", "two"])
def test_line_numbers_are_those_of_the_file_even_after_blank_lines_at_its_top(campaign, before):
    content = before + "number,Name,otp\n918867135123,Asha,1\n\n12345,Ravi,2\n"

    upload(campaign, content)

    line_in_file = content.split("\n").index("12345,Ravi,2") + 1
    assert rejections(campaign) == [(line_in_file, BAD_NUMBER)]


def test_a_re_uploaded_rejected_row_asks_for_its_masked_otp_again(campaign):
    upload(campaign, "number,Name,otp\n12345,Asha,482913\n")
    fixed = "number,Name,otp\n918867135123,Asha,******\n"  # the downloaded file, number fixed

    report = upload(campaign, fixed)

    assert (report.accepted, report.set_aside) == (0, 1)
    assert campaign.set_aside_rows.get().reason == (
        "Type otp again: secrets are masked in the set-aside file"
    )


# --- secrets --------------------------------------------------------------------------------------


def test_the_otp_of_a_rejected_row_is_not_stored_in_clear_either(campaign):
    upload(campaign, "number,Name,otp\n12345,Asha,905517\n918867135123,,318274\n")

    assert campaign.set_aside_rows.count() == 2
    dump = database_dump()
    assert "905517" not in dump
    assert "318274" not in dump


def test_a_row_fixed_in_the_set_aside_download_comes_back_without_the_text_markers(campaign):
    """The download marks numbers and formula-like cells as text with a leading apostrophe; read
    back, they are what was typed (an apostrophe before other text is the author's own)."""
    report = upload(
        campaign,
        "number,Name,otp\n"
        "'+91 88671 35123,'=Aśha,'1234\n"
        "'12345,Ravi,'5678\n"
        "918867135125,'Tis me,9\n",
    )

    assert report.accepted == 2
    calls = calls_of(campaign)
    assert calls[0] == ("918867135123", {"Name": "=Aśha", "otp": MASK})
    assert calls[1][1]["Name"] == "'Tis me"
    (row,) = campaign.set_aside_rows.all()
    assert row.values["number"] == "12345"
    assert "'" not in row.reason
