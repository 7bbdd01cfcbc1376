"""The sandbox: answers like the provider, offline, and a little later delivers the call's outcome
through the same ingest code a real webhook takes (its own task, run by the worker)."""

import functools
import io
import json
import math
import uuid
import wave
from array import array
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import requests
from django.conf import settings
from django.tasks import task
from django.urls import reverse
from django.utils import timezone
from urllib3.connection import HTTPConnection
from urllib3.exceptions import NewConnectionError

from calls.models import CallEvent, CallLog
from calls.provider.base import (
    GatewayError,
    Payload,
    ProviderPage,
    Row,
    SendResult,
    parse_send_response,
    transport_failure,
)
from calls.vocabulary import provider_key

# Numbers whose last four digits are listed here give a fixed result, like payment test cards.
SANDBOX_NUMBERS = {
    "0002": ("Busy", "BUSY"),
    "0003": ("Never answered", "NOANSWER"),
    "0004": ("Refused by the provider (HTTP 422)", None),
    "0005": ("Provider times out (status unknown; webhook settles it)", "ANSWER"),
    "0006": ("Network congestion (failed)", "CONGESTION"),
    "0007": ("Caller hung up first (canceled)", "CANCEL"),
    "0008": ("Refused for lack of balance (HTTP 402)", None),
    "0009": ("Provider unreachable (not sent; retry allowed)", None),
}
SANDBOX_EXAMPLE = "919876540002"
# The sandbox's opt-out list, as the provider's unsubscribers API lists it.
SANDBOX_UNSUBSCRIBERS: tuple[Row, ...] = (
    {"id": 1, "receiver": "919876540010", "type": "voice", "value": "STOP"},
    {"id": 2, "receiver": "919876540011", "type": "voice", "value": "STOP"},
)
SANDBOX_CANNOT_CONNECT = "The sandbox has no provider account: nothing was created."


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
        if ending == "0008":
            return parse_send_response(402, json.dumps({"message": "Insufficient balance"}))
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
        """The status API for the sandbox's own calls, by id (outcomes still come by webhook).
        An answered call's customer pressed the last digit of their number: …40019 pressed 9."""
        key = provider_key(query.get("id", ""))
        call = CallLog.objects.filter(provider_key=key).exclude(provider_key="").first()
        rows = []
        if call is not None:
            answered = call.status == CallLog.Status.ANSWERED
            row = {"id": call.provider_id, "channel": "outgoing", "to": call.to}
            row |= {"status": call.provider_status.upper(), "dtmf": call.to[-1] if answered else ""}
            rows.append(row)
        return json.dumps({"status": 200, "message": "OK", "data": rows}).encode()

    def recording_link(self, to: str, bridge: str, started_at: datetime) -> str:
        """The sandbox records nothing: every recording is its short clip, served by the portal."""
        return reverse("calls:sandbox-recording")

    def upload_sound(self, name: str, filename: str, content: bytes, content_type: str) -> str:
        return f"sandbox-{uuid.uuid4()}"

    def unsubscribers(self, page: int) -> ProviderPage:
        return ProviderPage(rows=[dict(row) for row in SANDBOX_UNSUBSCRIBERS], more=False)

    # Nothing is connected in the sandbox, and nothing can be: the connect page says what the
    # real provider would be asked, and never pretends it was done.
    def webhooks(self, page: int) -> ProviderPage:
        return ProviderPage(rows=[], more=False)

    def subscriptions(self, page: int) -> ProviderPage:
        return ProviderPage(rows=[], more=False)

    def save_webhook(self, fields: Row, webhook_id: str = "") -> Row:
        raise GatewayError(SANDBOX_CANNOT_CONNECT)

    def subscribe(self, event: str, webhook_id: str) -> Row:
        raise GatewayError(SANDBOX_CANNOT_CONNECT)

    def _schedule_outcome(self, payload: Payload, call_id: str, status: str | None) -> None:
        zone = ZoneInfo(settings.OBD_PROVIDER_TIMEZONE)
        start = timezone.now().astimezone(zone)
        answered = status == "ANSWER"
        # As the provider's, the webhook comes once the call has ended; short calls (2 to 9 s), so
        # that a demo's outcome still shows within seconds.
        duration = 2 + int(call_id[:2], 16) % 8 if answered else 0
        end = start + timedelta(seconds=duration)
        push = {
            "bridge": payload["bridge"],
            "from": payload["bridge"],
            "to": payload["to"],
            "source": "OBD",
            "mid": call_id,
            "flow_id": payload.get("flow_id", ""),
            "start_at": start.strftime("%Y-%m-%d %H:%M:%S"),
            "end_at": end.strftime("%Y-%m-%d %H:%M:%S"),
            "duration": str(duration),
            "status": status,
            # A placeholder (.invalid never resolves): the portal plays the sandbox's clip.
            "recording_url": f"https://sandbox.invalid/{call_id}.wav" if answered else "",
        }
        delay = timedelta(seconds=settings.OBD_SANDBOX_DELAY_SECONDS)
        # From now in UTC: the provider's zone may change its clocks meanwhile.
        ends_in = timedelta(seconds=duration)
        deliver_sandbox_outcome.using(run_after=timezone.now() + ends_in + delay).enqueue(
            json.dumps(push)
        )


@functools.cache
def sandbox_recording() -> bytes:
    """What every sandbox recording sounds like: a second of two tones, as 8 kHz mono WAV."""
    rate = 8000
    samples = array(
        "h",
        (
            int(8000 * math.sin(2 * math.pi * (440 if i < rate // 2 else 660) * i / rate))
            for i in range(rate)
        ),
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return buffer.getvalue()


@task
def deliver_sandbox_outcome(body: str) -> int:
    """The sandbox's webhook: the same ingest path a real delivery takes."""
    return CallEvent.objects.ingest(source=CallEvent.Source.SANDBOX, body=body.encode()).pk
