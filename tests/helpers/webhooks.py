"""Deliveries to the webhook door, /webhooks/mobtexting/, as the provider makes them, and the
state of a call they leave behind."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import connection
from django.test import Client
from django.utils import timezone

from calls.models import CallEvent, CallLog
from calls.models.events import EARLY_WINDOW, apply_waiting
from tests.helpers.portal import WEBHOOK_SECRET

URL = "/webhooks/mobtexting/"


AUTH = {"Authorization": f"Bearer {WEBHOOK_SECRET}"}


CALL_ID = "3b69aca9-3b55-4e2d-bfe0-02b910dbe156"


BRIDGE = "918068287602"  # the conftest bridge


TO = "918867135123"


DAY = "2026-11-20"


OUTCOME_FIELDS = [
    "status",
    "provider_status",
    "started_at",
    "ended_at",
    "duration",
    "recording_url",
    "attempts",
]


OUTCOMES = {"ANSWER": "answered", "NOANSWER": "no_answer", "BUSY": "busy", "CONGESTION": "failed"}

# The provider's call statuses and the outcome each gives the call.
PROVIDER_STATUSES = [
    ("ANSWER", "answered"),
    ("COMPLETED", "answered"),
    ("NOANSWER", "no_answer"),
    ("MISSED", "no_answer"),
    ("BUSY", "busy"),
    ("CANCEL", "canceled"),
    ("CONGESTION", "failed"),
    ("CHANUNAVAIL", "failed"),
]


def push(**fields) -> dict:
    """A standard OBD push (§4.2) about CALL_ID; a field given as None is left out."""
    payload = {
        "bridge": BRIDGE,
        "from": BRIDGE,
        "to": TO,
        "source": "OBD",
        "mid": CALL_ID,
        "flow_id": "24",
        "start_at": f"{DAY} 10:00:00",
        "end_at": f"{DAY} 10:00:23",
        "duration": "23",
        "status": "ANSWER",
        "recording_url": "https://rec.example/a.mp3",
    }
    payload.update(fields)
    return {key: value for key, value in payload.items() if value is not None}


def provider_time(hh_mm: str, zone: str = "Asia/Kolkata") -> datetime:
    return datetime.fromisoformat(f"{DAY}T{hh_mm}").replace(tzinfo=ZoneInfo(zone))


def deliver(
    client: Client,
    payload: dict | bytes,
    *,
    query: str = "",
    headers: dict | None = None,
    content_type: str = "application/json",
):
    """POST one delivery the way the provider does: JSON with the shared secret."""
    body = json.dumps(payload) if isinstance(payload, dict) else payload
    response = client.post(
        f"{URL}?{query}" if query else URL,
        body,
        content_type=content_type,
        headers=AUTH if headers is None else headers,
    )
    apply_stored()
    return response


def apply_stored() -> int:
    """What the deliveries worker does next: apply everything stored and waiting, after a look
    as a running engine makes it for the deliveries that came before their call's answer."""
    CallEvent.objects.queue_again_learned(since=timezone.now() - EARLY_WINDOW)
    applied = 0
    while claimed := apply_waiting():
        applied += claimed
    return applied


def decided_by(payload: dict, *, attempts: int) -> dict:
    """The call's state when this attempt decided its outcome: every detail comes from it."""
    return {
        "status": OUTCOMES[payload["status"]],
        "provider_status": payload["status"],
        "started_at": provider_time(payload["start_at"][11:]),
        "ended_at": provider_time(payload["end_at"][11:]),
        "duration": int(payload["duration"]),
        "recording_url": payload["recording_url"],
        "attempts": attempts,
    }


def final_state(call: CallLog) -> dict:
    """What a person sees of the call's outcome, fresh from the database."""
    call.refresh_from_db()
    return {name: getattr(call, name) for name in OUTCOME_FIELDS}


def deliver_at_once(payloads: list[dict]) -> list[int]:
    """Post every payload from its own thread and client, all released together."""
    start = threading.Barrier(len(payloads))

    def post(payload: dict) -> int:
        try:
            client = Client(enforce_csrf_checks=True)
            start.wait(timeout=10)
            return deliver(client, payload).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(payloads)) as pool:
        codes = list(pool.map(post, payloads))
    apply_stored()
    return codes
