"""The only code that speaks HTTP to Mobtexting. One Gateway interface, two implementations.

`get_gateway()` picks MobtextingGateway when MOBTEXTING_API_TOKEN is set, else SandboxGateway,
which answers like the provider and later delivers a realistic webhook through the worker.

A POST to outgoing/send is never retried: the API has no idempotency key, so a retry after a
timeout could ring a customer twice. Anything that may have reached the provider is `unknown`.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Protocol
from zoneinfo import ZoneInfo

import requests
from django.conf import settings
from django.utils import timezone
from urllib3.exceptions import NewConnectionError

from calls.webhooks import MalformedDelivery, provider_time

QUEUED, REJECTED, ERROR, UNKNOWN = "queued", "rejected", "error", "unknown"


@dataclass(frozen=True)
class SendResult:
    """What became of one POST to outgoing/send."""

    status: str  # queued, rejected, error or unknown
    http_status: int | None = None
    body: str = ""
    provider_id: str = ""
    provider_status: str = ""
    cost: Decimal | None = None
    created_at: datetime | None = None
    error: str = ""
    retry_after: float | None = None  # seconds, when the provider asked us to slow down (429)


class GatewayError(Exception):
    """A look-up failed; the message is safe to show (it never holds the token)."""


class Gateway(Protocol):
    is_sandbox: bool

    def send(self, payload: dict) -> SendResult: ...

    def call_status(self, **query: str) -> bytes: ...

    def upload_sound(self, name: str, filename: str, content: bytes, content_type: str) -> str: ...


def get_gateway() -> Gateway:
    if settings.MOBTEXTING_API_TOKEN:
        return MobtextingGateway(
            settings.MOBTEXTING_API_URL,
            settings.MOBTEXTING_API_TOKEN,
            timeout=(settings.MOBTEXTING_CONNECT_TIMEOUT, settings.MOBTEXTING_READ_TIMEOUT),
        )
    return SandboxGateway()


_sessions: dict[str, requests.Session] = {}


def _session_for(base_url: str) -> requests.Session:
    """One keep-alive session per provider base URL and process. requests' adapters retry
    nothing by default (max_retries=0), which is what a non-idempotent POST needs."""
    if base_url not in _sessions:
        _sessions[base_url] = requests.Session()
    return _sessions[base_url]


class MobtextingGateway:
    is_sandbox = False

    def __init__(self, base_url: str, token: str, timeout: tuple[float, float] = (5, 15)) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = timeout
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        self.session = _session_for(self.base_url)

    def send(self, payload: dict) -> SendResult:
        url = self.base_url + "outgoing/send"
        try:
            response = self.session.post(
                url, data=json.dumps(payload), headers=self._headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            return _transport_failure(exc)
        return parse_send_response(
            response.status_code, response.text, response.headers.get("Retry-After")
        )

    def call_status(self, **query: str) -> bytes:
        """GET outgoing/callstatus by `id` (the provider's call id) or `mobile`: the raw JSON."""
        try:
            response = self.session.get(
                self.base_url + "outgoing/callstatus",
                params=query,
                headers=self._headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise GatewayError(f"status look-up failed ({_reason(exc)})") from None
        if response.status_code != 200:
            raise GatewayError(f"status look-up answered HTTP {response.status_code}")
        return response.content

    def upload_sound(self, name: str, filename: str, content: bytes, content_type: str) -> str:
        """POST voice/sounds (multipart); the provider's sound id for `audio` on later calls."""
        headers = {k: v for k, v in self._headers.items() if k != "Content-Type"}
        try:
            response = self.session.post(
                self.base_url + "voice/sounds",
                data={"name": name},
                files={"audio": (filename, content, content_type)},
                headers=headers,
                timeout=(self.timeout[0], max(self.timeout[1], 60)),
            )
        except requests.RequestException as exc:
            raise GatewayError(f"The upload did not reach the provider ({_reason(exc)}).") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        sound_id = (
            data.get("data", {}).get("id")
            if isinstance(data, dict) and isinstance(data.get("data"), dict)
            else None
        )
        if response.status_code >= 400 or not sound_id:
            raise GatewayError(_rejection(response.status_code, data, what="sound"))
        return str(sound_id)


def _transport_failure(exc: requests.RequestException) -> SendResult:
    if _nothing_sent(exc):
        message = (
            f"Could not reach the provider ({_reason(exc)}). Nothing was sent; it is safe to retry."
        )
        return SendResult(status=ERROR, error=message)
    message = (
        f"No answer from the provider ({_reason(exc)}). The call may or may not have been "
        "placed, so it is not sent again; its outcome will come from the provider's webhook or "
        "a status look-up."
    )
    return SendResult(status=UNKNOWN, error=message)


def _nothing_sent(exc: BaseException) -> bool:
    """True only when the request cannot have left this machine: DNS failure, refused, connect
    timeout. A reset or read timeout after the request was written may have been accepted."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: BaseException | None = exc
    while seen is not None:
        reason = getattr(seen, "reason", None)
        if isinstance(seen, NewConnectionError) or isinstance(reason, NewConnectionError):
            return True
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = nested or seen.__cause__ or seen.__context__
    return False


def _reason(exc: BaseException) -> str:
    if isinstance(exc, requests.ReadTimeout):
        return "read timeout"
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timeout"
    text = str(exc)
    for hint in (
        "Name or service not known",
        "Temporary failure in name resolution",
        "Connection refused",
        "Connection reset",
        "Connection aborted",
    ):
        if hint in text:
            return hint.lower()
    return type(exc).__name__


def parse_send_response(http_status: int, text: str, retry_after: str | None = None) -> SendResult:
    """Read either documented answer: `{"status": "OK", data[].id, credits}` (current) or
    `{"status": 200, data[].id "<uuid>:1", charges}` (legacy)."""
    base = {"http_status": http_status, "body": text[:10000]}
    if http_status >= 500:
        return SendResult(
            status=UNKNOWN,
            **base,
            error=f"The provider failed with HTTP {http_status}. The call may or may not have "
            "been placed: it is not resent automatically and will be settled by its webhook "
            "or a status look-up.",
        )
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if http_status >= 400:
        return SendResult(
            status=REJECTED,
            **base,
            retry_after=_seconds(retry_after),
            error=_rejection(http_status, data),
        )
    if not isinstance(data, dict):
        return SendResult(
            status=UNKNOWN,
            **base,
            error=f"The provider answered HTTP {http_status} with a body that is not the "
            "documented JSON. The call may have been placed; it will be settled by its webhook.",
        )
    if data.get("status") not in ("OK", 200, "200"):
        return SendResult(status=REJECTED, **base, error=_rejection(http_status, data))
    rows = data.get("data")
    row = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], dict) else {}
    provider_id = str(row.get("id") or "")
    if not provider_id:
        return SendResult(
            status=UNKNOWN,
            **base,
            error="The provider accepted the request but returned no call id; the call will "
            "be matched by its webhook.",
        )
    return SendResult(
        status=QUEUED,
        **base,
        provider_id=provider_id,
        provider_status=str(row.get("status") or data.get("status")),
        cost=_money(row.get("credits", row.get("charges"))),
        created_at=_provider_time(row.get("created_at") or row.get("submitted_at")),
    )


def _rejection(http_status: int, data: object, what: str = "call") -> str:
    if http_status == 401:
        return "The provider refused our API token (HTTP 401): check MOBTEXTING_API_TOKEN."
    message = ""
    errors = ""
    if isinstance(data, dict):
        message = str(data.get("message") or "")
        if isinstance(data.get("errors"), dict):
            errors = "; ".join(
                f"{field}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
                for field, msgs in data["errors"].items()
            )
    if http_status == 429:
        message = message or "Too many requests"
    detail = " — ".join(p for p in (message, errors) if p) or "no reason given"
    return f"The provider rejected the {what} (HTTP {http_status}): {detail}"


def _money(value: object) -> Decimal | None:
    """Credits come as 1 or "0.0005": parse from the string form, never through float."""
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _provider_time(value: object) -> datetime | None:
    """`2024-07-10T06:09:43.054164Z` (UTC) or the legacy naive `2019-08-16 15:09:51`."""
    try:
        return provider_time(str(value or ""), ZoneInfo(settings.OBD_PROVIDER_TIMEZONE))
    except MalformedDelivery:
        return None


# --- the sandbox --------------------------------------------------------------------------------

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

    def send(self, payload: dict) -> SendResult:
        ending = payload["to"][-4:]
        if ending == "0009":
            return _transport_failure(
                requests.ConnectionError(NewConnectionError(None, "Connection refused"))
            )
        if ending == "0004":
            body = {
                "message": "The given data was invalid.",
                "errors": {"to": ["The number is on the operator's do-not-disturb register."]},
            }
            return parse_send_response(422, json.dumps(body))
        call_id = str(uuid.uuid4())
        status = SANDBOX_NUMBERS.get(ending, ("", "ANSWER"))[1]
        self._schedule_outcome(payload, call_id, status)
        if ending == "0005":
            return _transport_failure(requests.ReadTimeout("read timeout"))
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

    def _schedule_outcome(self, payload: dict, call_id: str, status: str) -> None:
        from calls.tasks import deliver_sandbox_outcome

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
