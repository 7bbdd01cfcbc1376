"""The portal as a person uses it: logging in, forms as a browser posts them, what a page
shows, what the database holds and what the logs must never hold."""

import re
import uuid

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from calls.models import CallLog

OTP = "482913"
API_TOKEN = "tok-123"  # the real_gateway fixture's
WEBHOOK_SECRET = "hook-secret"  # the conftest's


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def campaign_form(bridge, flow, content: bytes, **extra) -> dict:
    """The new-campaign form as a browser posts it, with `content` as the CSV."""
    return {
        "name": "November reminders",
        "bridge": bridge.pk,
        "flow": flow.pk if flow else "",
        "audio": "",
        "interval": "0",
        "webhook_id": "",
        "pace": "2",
        "window_start": "",
        "window_end": "",
        "window_timezone": "Asia/Kolkata",
        "csv_file": SimpleUploadedFile("numbers.csv", content, content_type="text/csv"),
    } | extra


def call_form(bridge, flow=None, audio=None, **extra) -> dict:
    """The place-a-call form as a browser posts it."""
    data = {
        "bridge": bridge.pk,
        "to": "+91 88671 35123",
        "flow": flow.pk if flow else "",
        "audio": audio.pk if audio else "",
        "name": "",
        "interval": "0",
        "webhook_id": "",
        "idempotency_key": str(uuid.uuid4()),
    }
    return data | extra


def place_call(client: Client, bridge, flow, to: str = "+91 88671 35123") -> CallLog:
    """Place a call to `flow` through the form, as Asha with the OTP, and return it."""
    data = call_form(bridge, flow, to=to, **{"variables[Name]": "Asha", "variables[otp]": OTP})
    response = client.post("/calls/new/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return CallLog.objects.latest("id")


def text_of(html: str) -> str:
    """Markup stripped and whitespace collapsed: what a person reads."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def audit_shown(html: str) -> list[str]:
    """The audit trail as shown, newest first, without the times: "agent placed the call"."""
    lists = re.findall(r'<ul class="audit">(.*?)</ul>', html, re.S)
    assert len(lists) == 1, f"the audit trail is shown {len(lists)} times"
    items = re.findall(r"<li[^>]*>(.*?)</li>", lists[0], re.S)
    return [text_of(re.sub(r"<time>.*?</time>", "", item, flags=re.S)) for item in items]


def health(client: Client) -> dict:
    """/healthz's body, whether it answers 200 or 503 (its sections on the provider's lists say
    the same either way; tests/views/test_health.py reads the status)."""
    return dict(client.get("/healthz").json())


def database_dump() -> str:
    """Every row of every table, as text: what someone reading the database would see."""
    with connection.cursor() as cursor:
        dump = []
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from introspection
            dump.append(repr(cursor.fetchall()))
    return "".join(dump)


def assert_no_secrets_in(caplog) -> None:
    for record in caplog.records:
        line = record.getMessage()
        for secret in (API_TOKEN, WEBHOOK_SECRET, OTP):
            assert secret not in line, f"{secret!r} logged: {line}"
