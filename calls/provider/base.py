"""What every gateway shares: the result of a send, the Gateway protocol, and reading the
provider's answers (both documented response shapes, failures in words a person can act on).

A POST to outgoing/send is never retried: the API has no idempotency key, so a retry after a
timeout could ring a customer twice. Anything that may have reached the provider is `unknown`.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol, TypedDict
from zoneinfo import ZoneInfo

import requests
from django.conf import settings
from urllib3.exceptions import NewConnectionError

from calls.vocabulary import MAX_ID, CallStatus
from calls.webhooks import EARLIEST, LATEST, MAX_STATUS, MalformedDelivery, provider_time

QUEUED = CallStatus.QUEUED
REJECTED = CallStatus.REJECTED
ERROR = CallStatus.ERROR
UNKNOWN = CallStatus.UNKNOWN


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


# The JSON body of one POST to outgoing/send: documented fields plus one `var_*` per variable.
Payload = dict[str, str | int]


class _Raw(TypedDict):
    http_status: int
    body: str


class GatewayError(Exception):
    """A look-up failed; the message is safe to show (it never holds the token)."""


class RateLimited(GatewayError):
    """The provider asked us to slow down (HTTP 429), for `retry_after` seconds when it said."""

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = _seconds(retry_after)


# One object of the provider's management API (a webhook, a subscription, an unsubscriber).
Row = dict[str, object]


@dataclass(frozen=True)
class ProviderPage:
    """One page of a provider list (read in calls/provider/listing.py)."""

    rows: list[Row]
    more: bool  # another page follows
    junk: tuple[object, ...] = ()  # entries of `data` that are no JSON object: unreadable rows


class Gateway(Protocol):
    is_sandbox: bool

    def send(self, payload: Payload) -> SendResult: ...

    def call_status(self, **query: str) -> bytes: ...

    def upload_sound(self, name: str, filename: str, content: bytes, content_type: str) -> str: ...

    def recording_link(self, to: str, bridge: str, started_at: datetime) -> str: ...

    def unsubscribers(self, page: int) -> ProviderPage: ...

    def webhooks(self, page: int) -> ProviderPage: ...

    def save_webhook(self, fields: Row, webhook_id: str = "") -> Row: ...

    def subscriptions(self, page: int) -> ProviderPage: ...

    def subscribe(self, event: str, webhook_id: str) -> Row: ...


def transport_failure(exc: requests.RequestException) -> SendResult:
    if _nothing_sent(exc):
        message = f"Could not reach the provider ({reason_of(exc)}). Nothing was sent; it is safe to retry."
        return SendResult(status=ERROR, error=message)
    message = (
        f"No answer from the provider ({reason_of(exc)}). The call may or may not have been "
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


def reason_of(exc: BaseException) -> str:
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
    base: _Raw = {"http_status": http_status, "body": text[:10000]}
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
            error=rejection_message(http_status, data),
        )
    if not isinstance(data, dict):
        return SendResult(
            status=UNKNOWN,
            **base,
            error=f"The provider answered HTTP {http_status} with a body that is not the "
            "documented JSON. The call may have been placed; it will be settled by its webhook.",
        )
    if data.get("status") not in ("OK", 200, "200"):
        return SendResult(status=REJECTED, **base, error=rejection_message(http_status, data))
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
    if len(provider_id) > MAX_ID:
        return SendResult(
            status=UNKNOWN,
            **base,
            error=f"The provider accepted the request but answered with a call id of "
            f"{len(provider_id)} characters, longer than any id we keep ({MAX_ID}). The call may "
            "have been placed; its webhook or a status look-up by number settles it.",
        )
    return SendResult(
        status=QUEUED,
        **base,
        provider_id=provider_id,
        provider_status=str(row.get("status") or data.get("status"))[:MAX_STATUS],
        cost=_money(row.get("credits", row.get("charges"))),
        created_at=_provider_time(row.get("created_at") or row.get("submitted_at")),
    )


def rejection_message(http_status: int, data: object, what: str = "call") -> str:
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
        money = Decimal(str(value))
    except InvalidOperation:
        return None
    # What the cost column holds (12 digits, 4 after the point); anything else is no price.
    return money.quantize(Decimal("0.0001")) if money.is_finite() and abs(money) < 10**8 else None


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _provider_time(value: object) -> datetime | None:
    """`2024-07-10T06:09:43.054164Z` (UTC) or the legacy naive `2019-08-16 15:09:51`."""
    try:
        moment = provider_time(str(value or ""), ZoneInfo(settings.OBD_PROVIDER_TIMEZONE))
    except MalformedDelivery:
        return None
    return moment if moment is None or EARLIEST <= moment <= LATEST else None
