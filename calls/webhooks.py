"""Turn a raw provider delivery into a typed outcome. No ORM and no HTTP here: bytes in, data out.

Accepts the standard OBD push (JSON), compose webhooks (JSON, form-encoded or multipart, values
possibly in the query string) and the call-status API's rows. The published example has unquoted
numbers and a trailing comma, so JSON is read leniently when it is not strictly valid.
"""

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from calls.vocabulary import CallStatus

# The provider's words for an outcome, in ours; any other final word means the call failed.
PROVIDER_OUTCOMES = {
    "ANSWER": CallStatus.ANSWERED,
    "ANSWERED": CallStatus.ANSWERED,
    "COMPLETED": CallStatus.ANSWERED,
    "NOANSWER": CallStatus.NO_ANSWER,
    "NO_ANSWER": CallStatus.NO_ANSWER,
    "MISSED": CallStatus.NO_ANSWER,
    "BUSY": CallStatus.BUSY,
    "CANCEL": CallStatus.CANCELED,
    "CANCELED": CallStatus.CANCELED,
}
# Statuses of a call not finished yet (the status API may show them): no outcome to record.
NOT_FINAL = {"QUEUED", "PENDING", "RINGING", "INITIATED", "IN-PROGRESS", "PROGRESS"}


class MalformedDelivery(ValueError):
    """The delivery cannot be read; the message says why, for the stored event."""


@dataclass(frozen=True)
class Delivery:
    call_id: str = ""  # compose webhooks' {{id}} or the status API's id
    mid: str = ""
    to: str = ""
    bridge: str = ""
    source: str = ""
    flow_id: str = ""
    status: str = ""  # the raw provider status, e.g. ANSWER
    start_at: datetime | None = None
    end_at: datetime | None = None
    duration: int | None = None
    recording_url: str = ""
    webhook_id: str = ""
    challenge: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        """Our status for the provider's: unknown values count as failed, never as an error."""
        status = self.status.upper()
        if not status or status in NOT_FINAL:
            return ""
        return PROVIDER_OUTCOMES.get(status, CallStatus.FAILED)

    @property
    def ids(self) -> list[str]:
        return [i for i in dict.fromkeys((self.call_id, self.mid)) if i]

    def as_json(self) -> dict:
        data = asdict(self)
        for key in ("start_at", "end_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def parse_delivery(
    *, content_type: str, body: bytes, query: str = "", tz: ZoneInfo | None = None
) -> Delivery:
    """Read a delivery's fields from its body and query string (the body wins)."""
    fields = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    fields.pop("token", None)  # the verification token is ours, not a field
    fields.update(_body_fields(content_type.split(";")[0].strip().lower(), content_type, body))
    return delivery_from_fields(fields, tz or ZoneInfo("UTC"))


def delivery_from_fields(fields: dict, tz: ZoneInfo) -> Delivery:
    text = {str(k): _text(v) for k, v in fields.items()}
    known = {
        "id": "call_id",
        "call_id": "call_id",
        "mid": "mid",
        "to": "to",
        "mobile": "to",
        "bridge": "bridge",
        "source": "source",
        "flow_id": "flow_id",
        "status": "status",
        "message_status": "status",
        "recording_url": "recording_url",
        "webhook_id": "webhook_id",
        "challenge": "challenge",
    }
    values: dict = {}
    extra = {}
    for key, value in text.items():
        if key in known and not values.get(known[key]):
            values[known[key]] = value
        elif key not in {"start_at", "end_at", "duration"}:
            extra[key] = value
    # The status API names the bridge `from` (or `caller_id`); the push gives both bridge and from.
    values.setdefault("bridge", text.get("caller_id") or text.get("from", ""))
    return Delivery(
        **values,
        start_at=provider_time(text.get("start_at", ""), tz),
        end_at=provider_time(text.get("end_at", ""), tz),
        duration=_seconds(text.get("duration", "")),
        extra=extra,
    )


def _body_fields(kind: str, content_type: str, body: bytes) -> dict:
    if not body.strip():
        return {}
    if kind == "application/x-www-form-urlencoded":
        return {k: v[-1] for k, v in parse_qs(_decode(body), keep_blank_values=True).items()}
    if kind == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        if not message.is_multipart():
            raise MalformedDelivery("multipart body without parts")
        return {
            part.get_param("name", header="content-disposition"): _decode(
                part.get_payload(decode=True) or b""
            )
            for part in message.iter_parts()
            if part.get_param("name", header="content-disposition")
        }
    # JSON is the documented format; anything else unnamed is tried as JSON too.
    return _json_object(_decode(body))


def _json_object(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as strict_error:
        try:
            data = json.loads(_lenient(text))
        except json.JSONDecodeError:
            raise MalformedDelivery(f"body is not JSON: {strict_error}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list) and data["data"]:
        data = data["data"][0]  # a status-API answer: {"status": 200, "data": [{...}]}
    if not isinstance(data, dict):
        raise MalformedDelivery(f"expected a JSON object, got {type(data).__name__}")
    return data


def _lenient(text: str) -> str:
    """Quote the docs' bare phone numbers like 91806828XXXX and drop trailing commas."""
    text = re.sub(r"(:\s*)(\d[\dX]*X[\dX]*)(\s*[,}])", r'\1"\2"\3', text)
    return re.sub(r",(\s*[}\]])", r"\1", text)


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedDelivery("body is not UTF-8 text") from None


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value)


def provider_time(value: str, tz: ZoneInfo) -> datetime | None:
    """The provider's naive `YYYY-MM-DD hh:mm:ss` is read in `tz`; an explicit offset wins."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedDelivery(
            f"unreadable time {value!r}: expected YYYY-MM-DD hh:mm:ss"
        ) from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def _seconds(value: str) -> int | None:
    """`23`, `23.0` or the legacy `00:00:23`."""
    if not value:
        return None
    try:
        if ":" in value:
            hours, minutes, seconds = (int(p) for p in value.split(":"))
            seconds = hours * 3600 + minutes * 60 + seconds
        else:
            seconds = int(float(value))
    except (ValueError, OverflowError):
        raise MalformedDelivery(f"unreadable duration {value!r}") from None
    if seconds < 0:
        raise MalformedDelivery(f"negative duration {value!r}")
    return seconds
