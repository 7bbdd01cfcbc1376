"""Uploads are hostile: campaign CSVs, the do-not-call import and sounds are capped and checked,
and what cannot be used is refused with a clear message — never a 500, never half stored.
Everything goes through the real pages with real files, on SQLite and on PostgreSQL (a campaign's
CSV read by the worker's code, as a worker runs it after the upload)."""

import json
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.defaultfilters import filesizeformat
from django.test import Client, TestCase
from django.utils.html import escape

from calls.models import AudioAsset, CallLog, Campaign, CampaignImport, DoNotCall, SetAsideRow
from calls.sounds import upload_sound as upload_sound_task
from tests.helpers.campaigns import post_then_import
from tests.helpers.portal import campaign_form, logged_in, text_of
from tests.helpers.tasks import run_queued

NEW = "/campaigns/new/"
DO_NOT_CALL_IMPORT = "/admin/calls/donotcall/import/"
SOUND_UPLOAD = "/catalogue/sounds/upload/"
GOOD_ROW = b"918867135123,Asha,482913\n"


def csv_file(content: bytes, name: str = "numbers.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def new_campaign(client: Client, bridge, flow, content: bytes):
    """The new-campaign form posted with `content`, read by a worker after it answered."""
    return post_then_import(client, NEW, campaign_form(bridge, flow, content))


def said(response) -> list[str]:
    """The messages a response carries (rendered pages) or left for the next page."""
    return [str(m) for m in get_messages(response.wsgi_request)]


def refused_upload(user, bridge, flow, content: bytes) -> str:
    """Why the upload was not imported, as the page the person waited on says it."""
    client = logged_in(user)
    response = new_campaign(client, bridge, flow, content)
    assert response.status_code == 302, response.content.decode()[:2000]
    page = client.get(response["Location"])
    assert page.status_code == 410
    prefix = "numbers.csv was not imported: "
    shown = re.search(r'<p class="flash error"[^>]*>(.*?)</p>', page.content.decode(), re.S)
    assert shown and text_of(shown[1]).startswith(escape(prefix))
    return unescape(text_of(shown[1]))[len(prefix) :]


def assert_nothing_stored() -> None:
    assert not Campaign.objects.exists()
    assert not CallLog.objects.exists()
    assert not SetAsideRow.objects.exists()
    assert not CampaignImport.objects.exclude(content=b"").exists()  # nor the file


# --- the campaign CSV: size and columns ---------------------------------------------------------


def test_a_campaign_csv_over_the_size_limit_is_refused_on_the_form_naming_the_limit(
    settings, supervisor, bridge, otp_flow
):
    settings.OBD_CSV_MAX_BYTES = 1000
    content = b"number,Name,otp\n" + GOOD_ROW * 60  # 1456 bytes

    response = new_campaign(logged_in(supervisor), bridge, otp_flow, content)

    assert response.status_code == 200
    errors = response.context["form"].errors["csv_file"]
    assert errors == [
        f"The file is {filesizeformat(len(content))}; the limit is {filesizeformat(1000)}. "
        "Split it into smaller files."
    ]
    assert errors[0] in response.content.decode()
    assert_nothing_stored()


def test_a_file_at_the_size_limit_is_accepted(settings, supervisor, bridge, otp_flow):
    content = b"number,Name,otp\n" + GOOD_ROW
    settings.OBD_CSV_MAX_BYTES = len(content)

    response = new_campaign(logged_in(supervisor), bridge, otp_flow, content)

    assert response.status_code == 302
    assert CallLog.objects.get().to == "918867135123"


def test_a_second_upload_to_a_draft_over_the_size_limit_says_the_limit(
    settings, supervisor, bridge, otp_flow
):
    client = logged_in(supervisor)
    new_campaign(client, bridge, otp_flow, b"number,Name,otp\n" + GOOD_ROW)
    campaign = Campaign.objects.get()
    client.get(campaign.get_absolute_url())  # the first upload's report, read
    settings.OBD_CSV_MAX_BYTES = 100

    response = client.post(
        f"/campaigns/{campaign.pk}/upload/",
        {"csv_file": csv_file(b"number,Name,otp\n" + b"918867135124,Ravi,1\n" * 10)},
    )

    assert response.status_code == 302
    assert said(response) == [
        f"The file is {filesizeformat(216)}; the limit is {filesizeformat(100)}. "
        "Split it into smaller files."
    ]
    assert list(campaign.calls.values_list("to", flat=True)) == ["918867135123"]


def test_the_size_limit_is_read_from_the_environment_with_a_20_mb_default():
    def limit(**env: str) -> int:
        script = "import django; django.setup(); from django.conf import settings; "
        script += "print(settings.OBD_CSV_MAX_BYTES)"
        environ = {k: v for k, v in os.environ.items() if k != "OBD_CSV_MAX_BYTES"}
        environ |= {"DJANGO_SETTINGS_MODULE": "obdportal.settings", **env}
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=environ,
            cwd=Path(__file__).resolve().parent.parent,
            check=True,
        )
        return int(done.stdout)

    assert limit() == 20 * 1024 * 1024
    assert limit(OBD_CSV_MAX_BYTES="4096") == 4096


def test_a_file_with_more_than_100_columns_is_refused_and_leaves_no_draft(
    supervisor, bridge, otp_flow
):
    header = b"number,Name,otp," + b",".join(b"extra%d" % i for i in range(98))  # 101 columns
    why = refused_upload(supervisor, bridge, otp_flow, header + b"\n" + GOOD_ROW)

    assert why == (
        "Line 1 has 101 columns; at most 100 are read: "
        "keep the number column and the flow's variables."
    )
    assert_nothing_stored()


def test_a_row_with_more_than_100_cells_is_refused_naming_its_line(supervisor, bridge, otp_flow):
    wide = b"918867135124,Ravi,1" + b",x" * 150 + b"\n"
    content = b"number,Name,otp\n" + GOOD_ROW + wide

    why = refused_upload(supervisor, bridge, otp_flow, content)

    assert why == (
        "Line 3 has 153 columns; at most 100 are read: "
        "keep the number column and the flow's variables."
    )
    assert_nothing_stored()


# --- the campaign CSV: malformed files -----------------------------------------------------------


def test_an_unclosed_quote_is_refused_naming_its_line_instead_of_swallowing_the_rows_after_it(
    supervisor, bridge, otp_flow
):
    content = b'number,Name,otp\n918867135123,"Asha,1\n918867135124,Ravi,2\n918867135125,Meera,3\n'

    why = refused_upload(supervisor, bridge, otp_flow, content)

    assert why == 'Line 2 opens a quote (") that is never closed: close it or remove it.'
    assert_nothing_stored()


def test_a_quote_in_the_header_that_is_never_closed_is_refused(supervisor, bridge, otp_flow):
    why = refused_upload(supervisor, bridge, otp_flow, b'"number,Name,otp\n' + GOOD_ROW)

    assert why == 'Line 1 opens a quote (") that is never closed: close it or remove it.'
    assert_nothing_stored()


def test_a_200_kb_value_is_refused_with_a_clear_message_not_a_500(supervisor, bridge, otp_flow):
    content = b"number,Name,otp\n" + GOOD_ROW + b"918867135124," + b"x" * 200_000 + b",1\n"

    why = refused_upload(supervisor, bridge, otp_flow, content)

    assert why == (
        'Line 3 holds a value longer than 128 KB, or opens a quote (") that is never closed: '
        "fix that line and upload again."
    )
    assert_nothing_stored()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"number,Name,otp\n918867135123,As\x00ha,482913\n", id="in a cell"),
        pytest.param(b"number,Name,otp\n918867135123\x00,Asha,482913\n", id="in the number"),
        pytest.param(b"number,Na\x00me,otp\n" + GOOD_ROW, id="in the header"),
        pytest.param(b"number,Name,otp\n12345,Ravi\x00,1\n", id="in a row to be rejected"),
    ],
)
def test_a_nul_byte_is_refused_naming_its_line_and_stores_nothing(
    supervisor, bridge, otp_flow, content
):
    why = refused_upload(supervisor, bridge, otp_flow, content)

    line = 1 if b"Na\x00me" in content else 2
    assert why == (
        f"Line {line} contains a NUL character, which is never part of a CSV text: the file may "
        "be a spreadsheet or UTF-16; save it as “CSV UTF-8” and upload again."
    )
    assert_nothing_stored()


def test_a_utf16_file_without_a_bom_is_refused_not_stored_as_nul_filled_text(
    supervisor, bridge, otp_flow
):
    content = ("number,Name,otp\n" + GOOD_ROW.decode()).encode("utf-16-le")

    why = refused_upload(supervisor, bridge, otp_flow, content)

    assert "contains a NUL character" in why
    assert_nothing_stored()


def test_a_malformed_row_after_good_ones_leaves_none_of_them_stored(supervisor, bridge, otp_flow):
    good = b"".join(b"9188671351%02d,Name,1\n" % i for i in range(40))
    content = b"number,Name,otp\n" + good + b'918867135199,"Broken,1\n'

    why = refused_upload(supervisor, bridge, otp_flow, content)

    assert why == 'Line 42 opens a quote (") that is never closed: close it or remove it.'
    assert_nothing_stored()


def test_a_huge_junk_number_is_a_rejected_row_with_a_reason_that_fits_its_column(
    supervisor, bridge, otp_flow
):
    junk = "12345" * 2000
    content = f"number,Name,otp\n{junk},Ravi,1\n".encode() + GOOD_ROW

    client = logged_in(supervisor)
    response = new_campaign(client, bridge, otp_flow, content)

    page = client.get(response["Location"]).content.decode()
    assert "numbers.csv: 1 row ready to call, 1 set aside." in text_of(page)
    rejected = SetAsideRow.objects.get()
    assert rejected.line == 2
    assert len(rejected.reason) == 300 and rejected.reason.endswith("…")
    assert rejected.reason.startswith("1234512345")
    assert rejected.values["number"] == junk  # kept as typed, to be fixed


def test_well_formed_quoting_still_reads_commas_and_quotes_inside_values(
    supervisor, bridge, otp_flow
):
    content = b'number,Name,otp\n918867135123,"Rao, ""Asha""",482913\n'

    response = new_campaign(logged_in(supervisor), bridge, otp_flow, content)

    assert response.status_code == 302
    assert CallLog.objects.get().variables["Name"] == 'Rao, "Asha"'


# --- the do-not-call import in the admin ----------------------------------------------------------


def import_do_not_call(client: Client, content: bytes):
    return client.post(DO_NOT_CALL_IMPORT, {"csv_file": csv_file(content, "dnc.csv")})


def form_errors(response) -> list[str]:
    return response.context["form"].errors["csv_file"]


def test_a_do_not_call_file_over_the_size_limit_is_refused_naming_the_limit(settings, admin_user):
    settings.OBD_CSV_MAX_BYTES = 100
    content = b"number,reason\n" + b"918867135123,asked\n" * 10

    response = import_do_not_call(logged_in(admin_user), content)

    assert response.status_code == 200
    assert form_errors(response) == [
        f"The file is {filesizeformat(len(content))}; the limit is {filesizeformat(100)}. "
        "Split it into smaller files."
    ]
    assert not DoNotCall.objects.exists()


@pytest.mark.parametrize(
    ("content", "error"),
    [
        pytest.param(
            b'number,reason\n918867135123,"asked\n918867135124,moved\n',
            'Line 2 is not well-formed CSV (unexpected end of data): look for a quote (") '
            "left open or a value far too long, and import again.",
            id="an unclosed quote",
        ),
        pytest.param(
            b"number,reason\n918867135123," + b"x" * 200_000 + b"\n",
            "Line 2 is not well-formed CSV (field larger than field limit (131072)): "
            'look for a quote (") left open or a value far too long, and import again.',
            id="a 200 KB value",
        ),
        pytest.param(
            b"number,reason\n918867135123,ask\x00ed\n",
            "The file contains a NUL character, which is never part of a CSV text: "
            "save it as “CSV UTF-8” and import again.",
            id="a NUL byte",
        ),
    ],
)
def test_a_malformed_do_not_call_file_is_refused_on_the_form_and_adds_nothing(
    admin_user, content, error
):
    response = import_do_not_call(logged_in(admin_user), content)

    assert response.status_code == 200
    assert form_errors(response) == [error]
    assert escape(error) in response.content.decode()
    assert not DoNotCall.objects.exists()


def test_a_well_formed_do_not_call_file_still_imports(admin_user):
    response = import_do_not_call(logged_in(admin_user), b"number,reason\n918867135123,asked\n")

    assert response.status_code == 302
    assert said(response) == ["1 number added."]
    assert DoNotCall.objects.get().reason == "asked"


def test_the_do_not_call_import_says_which_rows_it_skipped_and_why(admin_user):
    response = import_do_not_call(logged_in(admin_user), b"number\n918867135123\n12345\n")

    assert said(response) == [
        "1 number added, 1 row skipped (line 3: 12345 is not a valid phone number with country "
        "code (for example +91 88671 35123))."
    ]


# --- sounds: the content must be audio ---------------------------------------------------------

MP3_WITH_TAG = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(400)
MP3_FRAME = b"\xff\xfb\x90\x64" + bytes(400)  # MPEG-1 Layer III, no tag
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00" + bytes(200)


def upload_sound(client: Client, filename: str, content: bytes, kind: str):
    return client.post(
        SOUND_UPLOAD,
        {"name": "Diwali greeting", "audio_file": SimpleUploadedFile(filename, content, kind)},
    )


@pytest.mark.parametrize(
    ("filename", "content", "kind"),
    [
        pytest.param("greeting.mp3", b"<?php system($_GET['c']); ?>", "audio/mpeg", id="php"),
        pytest.param("greeting.mp3", b"just some text, not audio", "audio/mpeg", id="text"),
        pytest.param("greeting.wav", b"\x89PNG\r\n\x1a\n" + bytes(100), "audio/wav", id="png"),
        pytest.param("greeting.wav", b"RIFF\x24\x00\x00\x00AVI LIST", "audio/wav", id="avi"),
        pytest.param("greeting.mp3", b"OggS\x00\x02" + bytes(100), "audio/ogg", id="ogg"),
    ],
)
def test_a_file_named_and_declared_as_audio_whose_content_is_not_mp3_or_wav_is_refused(
    supervisor, filename, content, kind
):
    response = upload_sound(logged_in(supervisor), filename, content, kind)

    assert response.status_code == 200
    assert not AudioAsset.objects.exists()
    assert response.context["form"].errors["audio_file"] == [
        "The file's content is not MP3 or WAV audio, whatever its name says: "
        "export the recording as MP3 or WAV and upload that."
    ]


@pytest.mark.parametrize(
    ("filename", "content", "declared", "sent_as"),
    [
        pytest.param("greeting.mp3", MP3_WITH_TAG, "audio/mpeg", "audio/mpeg", id="mp3 tagged"),
        pytest.param("greeting.mp3", MP3_FRAME, "application/octet-stream", "audio/mpeg", id="mp3"),
        pytest.param("greeting.wav", WAV, "application/octet-stream", "audio/wav", id="wav"),
    ],
)
def test_real_audio_reaches_the_provider_typed_by_its_content_not_by_the_browser(
    settings, fake_provider, supervisor, filename, content, declared, sent_as
):
    settings.MOBTEXTING_API_TOKEN = "token-for-tests"
    settings.MOBTEXTING_API_URL = fake_provider.url
    settings.OBD_SANDBOX = False
    answer = {"status": "OK", "code": 200, "data": {"id": "39888925-718e-43bb-a8b1-d4a3c0de0009"}}
    fake_provider.answer(200, json.dumps(answer).encode())

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = upload_sound(logged_in(supervisor), filename, content, declared)
    assert response.status_code == 302
    assert run_queued(upload_sound_task) == ["uploaded"]  # a worker sends it

    assert AudioAsset.objects.get().sound_id == "39888925-718e-43bb-a8b1-d4a3c0de0009"
    (sent,) = fake_provider.requests
    part_header = f'filename="{filename}"\r\nContent-Type: {sent_as}\r\n'.encode()
    assert part_header in sent.body
    assert content in sent.body
