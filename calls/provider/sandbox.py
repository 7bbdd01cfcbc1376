"""The sandbox: answers like the provider, offline, and a little later delivers the call's outcome
through the same ingest code a real webhook takes (its own task, run by the worker)."""

import json
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import requests
from django.conf import settings
from django.tasks import task
from django.utils import timezone
from urllib3.connection import HTTPConnection
from urllib3.exceptions import NewConnectionError

from calls.models import CallEvent
from calls.provider.base import (
    GatewayError,
    Payload,
    SendResult,
    parse_send_response,
    transport_failure,
)

# Numbers whose last four digits are listed here give a fixed result, like payment test cards.
SANDBOX_NUMBERS = {
    "0002": ("Busy", "BUSY"),
    "0003": ("Never answered", "NOANSWER"),
    "0004": ("Rejected by the provider (HTTP 422)", None),
    "0005": ("Provider times out (status unknown; webhook settles it)", "ANSWER"),
    "0006": ("Network congestion (failed)", "CONGESTION"),
    "0007": ("Caller hung up first (canceled)", "CANCEL"),
    "0009": ("Provider unreachable (not sent; retry allowed)", None),
}
SANDBOX_EXAMPLE = "919876540002"


class SandboxGateway:
    """Answers like the provider (current response shape), offline. A little later the worker
    delivers the call's outcome through the same ingest code a real webhook uses."""

    is_sandbox = True

    def send(self, payload: Payload) -> SendResult:
        ending = str(payload["to"])[-4:]
        if ending == "0009":
            return transport_failure(
                requests.ConnectionError(
                    NewConnectionError(HTTPConnection("sandbox.invalid"), "Connection refused")
                )
            )
        if ending == "0004":
            body: dict[str, object] = {
                "message": "The given data was invalid.",
                "errors": {"to": ["The number is on the operator's do-not-disturb register."]},
            }
            return parse_send_response(422, json.dumps(body))
        call_id = str(uuid.uuid4())
        status = SANDBOX_NUMBERS.get(ending, ("", "ANSWER"))[1]
        self._schedule_outcome(payload, call_id, status)
        if ending == "0005":
            return transport_failure(requests.ReadTimeout("read timeout"))
        row = {
            "id": call_id,
            "channel": "outgoing",
            "caller_id": payload["bridge"],
            "mobile": payload["to"],
            "flow_id": payload.get("flow_id"),
            "credits": 1,
            "created_at": timezone.now().isoformat().replace("+00:00", "Z"),
            "foreign_id": None,
            "options": None,
            "status": "queued",
        }
        body = {"status": "OK", "message": "Calls queued successfully", "data": [row]}
        return parse_send_response(200, json.dumps(body))

    def call_status(self, **query: str) -> bytes:
        raise GatewayError("the sandbox has no status look-up; its outcomes arrive by webhook")

    def upload_sound(self, name: str, filename: str, content: bytes, content_type: str) -> str:
        return f"sandbox-{uuid.uuid4()}"

    def _schedule_outcome(self, payload: Payload, call_id: str, status: str | None) -> None:
        zone = ZoneInfo(settings.OBD_PROVIDER_TIMEZONE)
        start = timezone.now().astimezone(zone)
        answered = status == "ANSWER"
        duration = 12 + int(call_id[:2], 16) % 40 if answered else 0
        push = {
            "bridge": payload["bridge"],
            "from": payload["bridge"],
            "to": payload["to"],
            "source": "OBD",
            "mid": call_id,
            "flow_id": payload.get("flow_id", ""),
            "start_at": start.strftime("%Y-%m-%d %H:%M:%S"),
            "end_at": (start + timedelta(seconds=duration)).strftime("%Y-%m-%d %H:%M:%S"),
            "duration": str(duration),
            "status": status,
            "recording_url": "",
        }
        delay = timedelta(seconds=settings.OBD_SANDBOX_DELAY_SECONDS)
        deliver_sandbox_outcome.using(run_after=timezone.now() + delay).enqueue(json.dumps(push))


@task
def deliver_sandbox_outcome(body: str) -> int:
    """The sandbox's webhook: the same ingest path a real delivery takes."""
    return CallEvent.objects.ingest(source=CallEvent.Source.SANDBOX, body=body.encode()).pk
