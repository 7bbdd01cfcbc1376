"""The provider's answers about keypresses and recordings, and answered calls to ask about."""

import json
from datetime import timedelta

from calls.models import CallLog
from tests.clock import pinned_now

STATUS_ID = "8456bf26-1b6e-4ac1-adb9-2768258f71d0"


def status_answer(call_id: str = STATUS_ID, dtmf: object = "", status: str = "ANSWER") -> bytes:
    """GET outgoing/callstatus as documented since 2024 (`dtmf` "" when nothing was pressed)."""
    row = {
        "id": call_id,
        "channel": "outgoing",
        "from": "918068287602",
        "to": "918867135123",
        "created_at": "2024-07-10 08:27:14",
        "foreign_id": "",
        "status": status,
        "start_at": "2024-07-10 08:27:26",
        "end_at": "2024-07-10 08:27:29",
        "dtmf": dtmf,
    }
    return json.dumps({"status": 200, "message": "OK", "data": [row]}).encode()


def answered(bridge, flow, *, minutes_ago: float = 5, to: str = "918867135123", **fields):
    """An answered call playing `flow`, its outcome `minutes_ago` (keys not looked up yet)."""
    provider_id = fields.pop("provider_id", STATUS_ID)
    moment = pinned_now() - timedelta(minutes=minutes_ago)
    values = {
        "bridge": bridge,
        "to": to,
        "flow": flow,
        "status": "answered",
        "provider_status": "ANSWER",
        "provider_id": provider_id,
        "provider_key": provider_id.split(":")[0].lower(),
        "outcome_at": moment,
        "started_at": moment - timedelta(seconds=30),
        "ended_at": moment,
        **fields,
    }
    return CallLog.objects.create(**values)


def json_reply(status: int, body: object) -> tuple[int, dict, bytes]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return status, {"Content-Type": "application/json"}, raw
