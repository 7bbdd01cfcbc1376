"""Running the portal: security headers, login throttling, the CSV export, the dashboard's
numbers, the health check, sound upload, the audit trail, production settings and logs."""

import csv
import io
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.http import StreamingHttpResponse
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from calls.models import (
    MASK,
    AudioAsset,
    AuditEntry,
    Bridge,
    CallEvent,
    CallLog,
    Campaign,
    WorkerHeartbeat,
)
from calls.reports import build_dashboard
from calls.tasks import reconcile_calls_periodically, worker_heartbeat
from tests.conftest import campaign_form, logged_in

ROOT = Path(__file__).resolve().parent.parent
LOGIN = "/accounts/login/"
OTP = "482913"
TOKEN = "tok-secret-5b1e"
WEBHOOK_SECRET = "hook-secret"  # the conftest's
SOUND_ID = "29ab2b24-3f93-441c-ae9c-6404361e5d14"


# --- helpers ------------------------------------------------------------------------------------


def text_of(html: str) -> str:
    """Markup stripped and whitespace collapsed: what a person reads."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def table_rows(html: str) -> list[list[str]]:
    return [
        [text_of(cell) for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S)
    ]


def audit_shown(html: str) -> list[str]:
    """The audit trail as shown, newest first, without the times: "agent placed the call"."""
    lists = re.findall(r'<ul class="audit">(.*?)</ul>', html, re.S)
    assert len(lists) == 1, f"the audit trail is shown {len(lists)} times"
    items = re.findall(r"<li[^>]*>(.*?)</li>", lists[0], re.S)
    return [text_of(re.sub(r"<time>.*?</time>", "", item, flags=re.S)) for item in items]


def page_title(html: str) -> str:
    return text_of(re.search(r"<title>(.*?)</title>", html, re.S)[1])


def place_call_form(bridge, flow, to: str = "+91 88671 35123", **extra) -> dict:
    data = {
        "bridge": bridge.pk,
        "to": to,
        "flow": flow.pk,
        "audio": "",
        "name": "",
        "interval": "0",
        "webhook_id": "",
        "idempotency_key": str(uuid.uuid4()),
        "variables[Name]": "Asha",
        "variables[otp]": OTP,
    }
    return data | extra


def place_call(client: Client, bridge, flow, to: str = "+91 88671 35123") -> CallLog:
    response = client.post("/calls/new/", place_call_form(bridge, flow, to))
    assert response.status_code == 302, response.content.decode()[:2000]
    return CallLog.objects.latest("id")


def header(recorded, name: str) -> str:
    return next((v for k, v in recorded.headers.items() if k.lower() == name.lower()), "")


def multipart_fields(recorded) -> dict[str, tuple[str | None, str, bytes]]:
    """A recorded multipart body as {field: (filename, content type, bytes)}."""
    head = f"Content-Type: {header(recorded, 'Content-Type')}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + recorded.body)
    assert message.is_multipart(), header(recorded, "Content-Type")
    return {
        part.get_param("name", header="content-disposition"): (
            part.get_filename(),
            part.get_content_type(),
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    }


@pytest.fixture
def real_gateway(settings, fake_provider):
    settings.MOBTEXTING_API_TOKEN = TOKEN
    settings.MOBTEXTING_API_URL = fake_provider.url
    settings.OBD_SANDBOX = False
    return fake_provider


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v2/"


# --- Content-Security-Policy --------------------------------------------------------------------


def csp_directives(response) -> dict[str, list[str]]:
    policy_text = response["Content-Security-Policy"]
    directives = {}
    for part in policy_text.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.mark.parametrize(("url", "who"), [(LOGIN, None), ("/calls/", "agent")])
def test_portal_pages_send_a_strict_csp_whose_nonce_is_on_the_htmx_script(request, url, who):
    client = logged_in(request.getfixturevalue(who)) if who else Client()
    response = client.get(url)
    assert response.status_code == 200
    directives = csp_directives(response)

    script_src = directives["script-src"]
    nonces = [v for v in script_src if v.startswith("'nonce-")]
    assert "'self'" in script_src and len(nonces) == 1
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "'unsafe-inline'" not in directives.get("default-src", [])
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]

    nonce = nonces[0].removeprefix("'nonce-").removesuffix("'")
    html = response.content.decode()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    htmx = [attrs for attrs, _ in scripts if "htmx" in attrs]
    assert len(htmx) == 1 and f'nonce="{nonce}"' in htmx[0]
    for attrs, _ in scripts:
        if "src=" not in attrs:  # inline: only allowed with this response's nonce
            assert f'nonce="{nonce}"' in attrs, attrs
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html), "the CSP blocks inline handlers"


def test_each_response_gets_a_fresh_nonce(agent):
    client = logged_in(agent)
    first, second = (csp_directives(client.get("/calls/"))["script-src"] for _ in range(2))
    assert first != second


# --- login throttling ---------------------------------------------------------------------------


def log_in(client: Client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.fixture
def locked_out(client, agent, settings) -> Client:
    """Five wrong passwords for `agent` from 127.0.0.1."""
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "agent", "not-the-password")
    return client


def assert_refused(response, client: Client) -> None:
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_after_five_wrong_passwords_even_the_right_one_is_refused(locked_out):
    assert_refused(log_in(locked_out, "agent", "pw-agent"), locked_out)
    assert locked_out.get("/calls/").status_code == 302  # still not logged in


@pytest.mark.parametrize(
    ("username", "address"),
    [
        pytest.param("supervisor", "127.0.0.1", id="another username from the same address"),
        pytest.param("agent", "10.20.30.40", id="the same username from another address"),
    ],
)
def test_a_lock_out_does_not_lock_anyone_else(locked_out, supervisor, username, address):
    other = Client()
    response = log_in(other, username, f"pw-{username}", address)
    assert response.status_code == 302 and response["Location"] == "/"
    assert other.get("/calls/").status_code == 200
    again = Client()
    assert_refused(log_in(again, "agent", "pw-agent"), again)  # the pair itself stays locked


def test_after_the_cool_off_the_right_password_works_again(locked_out, settings):
    assert_refused(log_in(locked_out, "agent", "pw-agent"), locked_out)
    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(minutes=1)
    assert AccessAttempt.objects.update(attempt_time=past) == 1
    response = log_in(locked_out, "agent", "pw-agent")
    assert response.status_code == 302 and response["Location"] == "/"
    assert locked_out.get("/calls/").status_code == 200


def test_a_successful_log_in_clears_earlier_failures(client, agent, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "agent", "not-the-password")
    assert log_in(client, "agent", "pw-agent").status_code == 302
    assert not AccessAttempt.objects.filter(username="agent", failures_since_start__gt=0).exists()


# --- the streamed CSV export --------------------------------------------------------------------


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


# --- the dashboard ------------------------------------------------------------------------------

# (days ago, status, bridge, plays, duration, cost, other fields)
KNOWN_CALLS = [
    (0, "answered", "blr", "flow", 30, "1.5", {}),
    (0, "answered", "mum", "audio", 50, "1", {}),
    (0, "no_answer", "blr", "flow", None, "0.5", {}),
    (0, "busy", "blr", "flow", None, None, {}),
    (0, "queued", "blr", "flow", None, None, {}),
    (0, "rejected", "blr", "audio", None, None, {"http_status": 422}),
    (0, "error", "mum", "audio", None, None, {}),
    (3, "answered", "blr", "flow", 90, "2", {}),
    (3, "answered", "blr", "audio", 70, "0", {}),
    (3, "failed", "mum", "flow", None, None, {"provider_status": "CONGESTION"}),
    (20, "canceled", "blr", "audio", None, None, {}),
    (20, "no_answer", "mum", "audio", None, "0.25", {}),
    (40, "answered", "blr", "flow", 1000, "100", {}),  # outside every period
]


@dataclass
class Expected:
    placed: int
    answered: int
    settled: int
    rate: float
    avg_duration: float
    cost: Decimal
    by_bridge: list[tuple[str, int, int, float]]  # label, placed, answered, rate
    by_flow: list[tuple[str, int, int, float]]  # flow or audio name, placed, answered, rate
    failures: list[tuple[str, str, int | None, int]]  # status, provider status, HTTP, count
    per_hour: dict[str, int]  # outcome (or other) → calls, all in the current hour


REJECTED_422 = ("rejected", "", 422, 1)
NOT_SENT = ("error", "", None, 1)
CONGESTION = ("failed", "CONGESTION", None, 1)
EXPECTED = {
    "today": Expected(
        placed=7,
        answered=2,
        settled=4,  # queued, rejected and error have no outcome
        rate=50.0,
        avg_duration=40.0,
        cost=Decimal("3"),
        by_bridge=[("Bengaluru", 5, 1, 33.3), ("Mumbai", 2, 1, 100.0)],
        by_flow=[("Login OTP", 4, 1, 33.3), ("Reminder", 3, 1, 100.0)],
        failures=[REJECTED_422, NOT_SENT],
        per_hour={"answered": 2, "no_answer": 1, "busy": 1, "other": 3},
    ),
    "7d": Expected(
        placed=10,
        answered=4,
        settled=7,
        rate=57.1,
        avg_duration=60.0,
        cost=Decimal("5"),
        by_bridge=[("Bengaluru", 7, 3, 60.0), ("Mumbai", 3, 1, 50.0)],
        by_flow=[("Login OTP", 6, 2, 40.0), ("Reminder", 4, 2, 100.0)],
        failures=[REJECTED_422, NOT_SENT, CONGESTION],
        per_hour={"answered": 4, "no_answer": 1, "busy": 1, "failed": 1, "other": 3},
    ),
    "30d": Expected(
        placed=12,
        answered=4,
        settled=9,
        rate=44.4,
        avg_duration=60.0,
        cost=Decimal("5.25"),
        by_bridge=[("Bengaluru", 8, 3, 50.0), ("Mumbai", 4, 1, 33.3)],
        by_flow=[("Login OTP", 6, 2, 40.0), ("Reminder", 6, 2, 50.0)],
        failures=[REJECTED_422, NOT_SENT, CONGESTION],
        per_hour={
            "answered": 4,
            "no_answer": 2,
            "busy": 1,
            "canceled": 1,
            "failed": 1,
            "other": 3,
        },
    ),
}
PERIODS = list(EXPECTED)


@pytest.fixture
def known_calls(bridge, otp_flow, sound) -> datetime:
    """KNOWN_CALLS, each created at this instant minus its days; returns the instant."""
    now = timezone.now()
    bridges = {"blr": bridge, "mum": Bridge.objects.create(number="912262345678", label="Mumbai")}
    for days, status, where, plays, duration, cost, extra in KNOWN_CALLS:
        CallLog.objects.create(
            bridge=bridges[where],
            to="918867135123",
            flow=otp_flow if plays == "flow" else None,
            audio=sound if plays == "audio" else None,
            status=status,
            duration=duration,
            cost=Decimal(cost) if cost is not None else None,
            created_at=now - timedelta(days=days),
            submitted_at=now - timedelta(days=days),
            **extra,
        )
    # Campaign rows never sent (waiting, or canceled with their campaign) are not calls placed.
    for status in ("pending", "canceled"):
        CallLog.objects.create(bridge=bridge, to="918867135124", audio=sound, status=status)
    return now


@pytest.mark.parametrize("period", PERIODS)
def test_the_dashboard_numbers_match_a_known_data_set(known_calls, period):
    expected = EXPECTED[period]
    board = build_dashboard(period)
    assert (board.placed, board.answered, board.settled) == (
        expected.placed,
        expected.answered,
        expected.settled,
    )
    assert board.answer_rate == expected.rate
    assert board.avg_answered_duration == pytest.approx(expected.avg_duration)
    assert board.cost == expected.cost
    assert sorted(
        (row["bridge__label"], row["placed"], row["answered"], row["rate"])
        for row in board.by_bridge
    ) == sorted(expected.by_bridge)
    assert board.by_bridge[0]["placed"] >= board.by_bridge[-1]["placed"]  # busiest first
    assert sorted(
        (row["flow__name"] or row["audio__name"], row["placed"], row["answered"], row["rate"])
        for row in board.by_flow
    ) == sorted(expected.by_flow)
    assert sorted(
        (f["status"], f["provider_status"], f["http_status"], f["n"]) for f in board.failures
    ) == sorted(expected.failures, key=str)


@pytest.mark.parametrize("period", PERIODS)
def test_the_per_hour_chart_counts_each_call_once_in_its_hour(known_calls, period):
    expected = EXPECTED[period]
    hours = build_dashboard(period).hours
    hour = timezone.localtime(known_calls).hour
    assert [bar["hour"] for bar in hours] == list(range(24))
    assert sum(bar["total"] for bar in hours) == expected.placed
    assert hours[hour]["total"] == expected.placed
    assert {seg["outcome"]: seg["n"] for seg in hours[hour]["segments"]} == expected.per_hour
    tallest = hours[hour]["segments"]
    assert sum(seg["height"] for seg in tallest) == pytest.approx(150, abs=0.5)


@pytest.mark.parametrize("period", PERIODS)
def test_the_dashboard_page_shows_the_numbers_and_an_svg_chart(agent_client, known_calls, period):
    expected = EXPECTED[period]
    response = agent_client.get("/", {"period": period})
    assert response.status_code == 200
    html = response.content.decode()

    def stat(name: str) -> str:
        return text_of(re.search(rf'id="stat-{name}"[^>]*>(.*?)</', html, re.S)[1])

    assert stat("placed") == str(expected.placed)
    assert stat("rate") == f"{expected.rate}%"
    assert stat("duration") == f"{expected.avg_duration:.0f} s"
    assert Decimal(stat("cost")) == expected.cost
    assert f"{expected.answered} of {expected.settled} with an outcome" in text_of(html)

    rows = table_rows(html)
    for label, placed, answered, rate in expected.by_bridge + expected.by_flow:
        assert [label, str(placed), str(answered), f"{rate}%"] in rows
    failure_rows = [row for row in rows if len(row) == 3]
    assert len(failure_rows) == len(expected.failures)
    for status, provider_status, http_status, n in expected.failures:
        label = CallLog.Status(status).label  # shown in words, as in the outcome mix
        (shown,) = [row for row in failure_rows if row[0] == label]
        assert shown[2] == str(n)
        assert str(http_status or provider_status) in shown[1]

    svg = re.search(r"<svg\b.*?</svg>", html, re.S)
    assert svg is not None
    assert svg[0].count("<rect") == len(expected.per_hour)
    hour = timezone.localtime(known_calls).hour
    assert f"{hour}:00 — {expected.placed} calls" in svg[0]


def test_the_dashboard_ignores_an_unknown_period(agent_client, known_calls):
    html = agent_client.get("/", {"period": "forever"}).content.decode()
    assert re.search(r'id="stat-placed"[^>]*>7<', html)


# --- /healthz -----------------------------------------------------------------------------------


def health(client: Client) -> dict:
    response = client.get("/healthz")
    assert response.status_code == 200
    return response.json()


def test_healthz_needs_no_login_and_says_the_worker_is_stale_without_a_heartbeat(client, db):
    body = health(client)
    assert body["database"] == "ok"
    assert body["worker"] == "stale"
    assert body["worker_last_beat"] is None


def test_healthz_says_ok_after_a_heartbeat(client, db):
    WorkerHeartbeat.beat()
    body = health(client)
    assert (body["database"], body["worker"]) == ("ok", "ok")
    assert 0 <= body["worker_age_seconds"] < 5


def test_healthz_says_stale_after_an_old_heartbeat(client, db):
    WorkerHeartbeat.objects.create(pk=1, beat_at=timezone.now() - timedelta(minutes=10))
    body = health(client)
    assert body["worker"] == "stale"
    assert body["worker_age_seconds"] >= 600


def waiting(task) -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=task.module_path, status="READY"))


def test_the_heartbeat_task_beats_and_queues_its_next_beat(client, db):
    before = timezone.now()
    worker_heartbeat.call()
    assert WorkerHeartbeat.last() >= before
    assert health(client)["worker"] == "ok"
    (following,) = waiting(worker_heartbeat)
    assert before < following.run_after < timezone.now() + timedelta(minutes=5)


def test_start_periodic_tasks_queues_reconcile_and_heartbeat_once_however_often_it_runs(db):
    for _ in range(2):
        call_command("start_periodic_tasks", stdout=io.StringIO())
    assert len(waiting(reconcile_calls_periodically)) == 1
    assert len(waiting(worker_heartbeat)) == 1


# --- sound upload -------------------------------------------------------------------------------

UPLOADED = {
    "status": "OK",
    "code": 200,
    "message": "Sound uploaded successfully",
    "data": {"id": SOUND_ID},
}
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00fake-mp3-frames"


def upload_sound(client: Client, filename="greeting.mp3", content=MP3, kind="audio/mpeg"):
    return client.post(
        "/catalogue/sounds/upload/",
        {"name": "Diwali greeting", "audio_file": SimpleUploadedFile(filename, content, kind)},
    )


def test_a_supervisor_uploads_a_sound_to_the_provider_as_multipart(real_gateway, supervisor):
    real_gateway.answer(200, UPLOADED)
    response = upload_sound(logged_in(supervisor))
    assert response.status_code == 302 and response["Location"] == "/catalogue/"

    (sent,) = real_gateway.requests
    assert (sent.method, sent.path) == ("POST", "/api/v2/voice/sounds")
    assert header(sent, "Authorization") == f"Bearer {TOKEN}"
    fields = multipart_fields(sent)
    assert fields["audio"] == ("greeting.mp3", "audio/mpeg", MP3)
    assert fields["name"][2] == b"Diwali greeting"

    asset = AudioAsset.objects.get()
    assert (asset.name, asset.sound_id, asset.url) == ("Diwali greeting", SOUND_ID, "")
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action) == (supervisor, AuditEntry.Action.SOUND_UPLOADED)
    assert SOUND_ID in entry.detail


def test_a_provider_refusal_shows_its_message_and_creates_nothing(real_gateway, supervisor):
    real_gateway.answer(
        422,
        {
            "message": "The given data was invalid.",
            "errors": {"audio": ["The audio must be a file of type mp3 or wav."]},
        },
    )
    response = upload_sound(logged_in(supervisor))
    assert response.status_code == 200
    shown = text_of(response.content.decode())
    assert "The given data was invalid." in shown
    assert "The audio must be a file of type mp3 or wav." in shown
    assert not AudioAsset.objects.exists() and not AuditEntry.objects.exists()


def test_the_form_refuses_a_file_that_is_not_audio(real_gateway, supervisor):
    response = upload_sound(logged_in(supervisor), "notes.txt", b"just text", "text/plain")
    assert response.status_code == 200
    assert "Upload an audio file (MP3 or WAV)." in response.content.decode()
    assert real_gateway.requests == []
    assert not AudioAsset.objects.exists()


def test_in_the_sandbox_an_upload_stores_a_made_up_sound_id(fake_provider, supervisor):
    response = upload_sound(logged_in(supervisor))
    assert response.status_code == 302
    asset = AudioAsset.objects.get()
    assert asset.sound_id.startswith("sandbox-") and len(asset.sound_id) > len("sandbox-")
    assert fake_provider.requests == []
    assert AuditEntry.objects.filter(action=AuditEntry.Action.SOUND_UPLOADED).count() == 1


# --- the audit trail ----------------------------------------------------------------------------


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


# --- production settings ------------------------------------------------------------------------

PRODUCTION_SECRETS = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "OBD_WEBHOOK_SECRET": secrets.token_urlsafe(24),
}


def manage(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        # A production start has none of these (the browser tests set the async one).
        if k
        not in {
            *PRODUCTION_SECRETS,
            "DEBUG",
            "ALLOWED_HOSTS",
            "DATABASE_URL",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "obdportal.production",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'check.sqlite3'}",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("given", "errors"),
    [
        ({}, {"calls.E001", "calls.E002"}),
        ({"OBD_WEBHOOK_SECRET": PRODUCTION_SECRETS["OBD_WEBHOOK_SECRET"]}, {"calls.E001"}),
        ({"SECRET_KEY": PRODUCTION_SECRETS["SECRET_KEY"]}, {"calls.E002"}),
        (
            {"SECRET_KEY": "insecure-dev-key-change-me-in-production", "OBD_WEBHOOK_SECRET": "x"},
            {"calls.E001"},
        ),
    ],
    ids=["neither", "no secret key", "no webhook secret", "the development key"],
)
def test_production_refuses_to_start_without_its_secrets(tmp_path, given, errors):
    result = manage(tmp_path, "check", **given)
    assert result.returncode != 0
    named = set(re.findall(r"calls\.E\d{3}", result.stderr))
    assert named == errors, result.stderr


def test_production_passes_the_deploy_check_with_its_secrets(tmp_path):
    result = manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        ALLOWED_HOSTS="portal.example.com",
        **PRODUCTION_SECRETS,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- structured logs ----------------------------------------------------------------------------

QUEUED = {
    "status": "OK",
    "message": "Calls queued successfully",
    "data": [{"id": "3b69aca9-3b55-4e2d-bfe0-02b910dbe156", "credits": 1, "status": "queued"}],
}


def assert_no_secrets_in(caplog) -> None:
    for record in caplog.records:
        line = record.getMessage()
        for secret in (TOKEN, WEBHOOK_SECRET, OTP):
            assert secret not in line, f"{secret!r} logged: {line}"


def test_placing_a_call_logs_one_line_with_its_id_and_status(
    caplog, real_gateway, agent, bridge, otp_flow
):
    real_gateway.answer(200, QUEUED)
    caplog.set_level("INFO")
    call = place_call(logged_in(agent), bridge, otp_flow)
    assert call.status == CallLog.Status.QUEUED
    lines = [r.getMessage() for r in caplog.records if f"call={call.pk}" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert "status=queued" in lines[0]
    assert_no_secrets_in(caplog)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param("http 500", id="the provider fails with HTTP 500"),
        pytest.param("unreachable", id="the provider is unreachable"),
    ],
)
def test_a_provider_failure_logs_a_warning_without_secrets(
    caplog, settings, real_gateway, agent, bridge, otp_flow, failure
):
    if failure == "unreachable":
        settings.MOBTEXTING_API_URL = closed_port_url()
    else:
        real_gateway.answer(500, {"message": "Server Error"})
    caplog.set_level("INFO")
    call = place_call(logged_in(agent), bridge, otp_flow)
    assert call.status in (CallLog.Status.ERROR, CallLog.Status.UNKNOWN)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings, [r.getMessage() for r in caplog.records]
    assert_no_secrets_in(caplog)


def test_a_webhook_logs_a_line_with_its_event_id_and_no_secret(caplog, client, bridge, sound):
    call = CallLog.objects.create(
        bridge=bridge,
        to="918867135123",
        audio=sound,
        status="queued",
        provider_id=QUEUED["data"][0]["id"],
        provider_key=QUEUED["data"][0]["id"],
    )
    caplog.set_level("INFO")
    delivery = {
        "bridge": bridge.number,
        "to": call.to,
        "mid": call.provider_id,
        "start_at": "2026-11-20 10:00:00",
        "end_at": "2026-11-20 10:00:23",
        "duration": "23",
        "status": "ANSWER",
    }
    response = client.post(
        "/webhooks/mobtexting/",
        json.dumps(delivery),
        content_type="application/json",
        headers={"Authorization": f"Bearer {WEBHOOK_SECRET}"},
    )
    assert response.status_code == 200
    event = CallEvent.objects.get()
    lines = [r.getMessage() for r in caplog.records if f"event={event.pk}" in r.getMessage()]
    assert len(lines) == 1
    assert f"call={call.pk}" in lines[0] and "status=ANSWER" in lines[0]
    assert_no_secrets_in(caplog)
