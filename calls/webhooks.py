"""Turn a raw provider delivery into a typed outcome. No ORM and no HTTP here: bytes in, data out.

Accepts the standard OBD push (JSON), compose webhooks (JSON, form-encoded or multipart, values
possibly in the query string) and the call-status API's rows. The published example has unquoted
numbers and a trailing comma, so JSON is read leniently when it is not strictly valid.
"""

import json
import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError

from calls.phone import normalize_number
from calls.vocabulary import KEYPAD, PROVIDER_NOT_FINAL, PROVIDER_OUTCOMES, CallStatus

# What the call's columns hold; a value beyond them is flagged, not applied.
MAX_STATUS = 32
MAX_URL = 1000
MAX_SECONDS = 2**31 - 1
MAX_KEYPRESSES = 32
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
# Longer digit runs are no count of seconds: kept as text rather than parsed (Python refuses
# integers over 4,300 digits, which would lose the whole delivery with its outcome).
MAX_INT_DIGITS = 30
NUL_REMOVED = "NUL bytes removed from values"
SURROGATE_REPLACED = "characters UTF-8 cannot hold (lone surrogates) replaced by ?"

BARE_NUMBER = re.compile(r"(:\s*+)(\d[\dX]*+)(?=\s*+[,}])")
TRAILING_COMMA = re.compile(r",(\s*+[}\]])")


class MalformedDelivery(ValueError):
    """The delivery cannot be read; the message says why, for the stored event."""


class EmptyAnswer(MalformedDelivery):
    """A status-API answer with no rows (`{"status": 200, "data": []}`): nothing happened yet."""


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
    dtmf: str = ""  # the keys the customer pressed, e.g. "19" (status API; compose webhooks)
    # A `voice:unsubscription` delivery: the numbers (digits with country code) that opted out.
    unsubscribed: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    # Values that came but do not fit (too long, out of range, unreadable, unsafe): kept in the
    # stored body, left out of the outcome, named here so the event is flagged.
    problems: tuple[str, ...] = ()

    @property
    def outcome(self) -> str:
        """Our status for the provider's: unknown values count as failed, never as an error."""
        status = self.status.upper()
        if not status or status in PROVIDER_NOT_FINAL:
            return ""
        return PROVIDER_OUTCOMES.get(status, CallStatus.FAILED)

    @property
    def ids(self) -> list[str]:
        return [i for i in dict.fromkeys((self.call_id, self.mid)) if i]

    def as_json(self) -> dict[str, object]:
        # A shallow copy: asdict() deep-copies every value, a third of a worker's parsing time.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["extra"] = dict(self.extra)
        for key in ("start_at", "end_at"):
            data[key] = data[key].isoformat() if data[key] else None
        data["problems"] = list(self.problems)
        data["unsubscribed"] = list(self.unsubscribed)
        return data


def parse_delivery(
    *, content_type: str, body: bytes, query: str = "", tz: ZoneInfo | None = None
) -> Delivery:
    """Read a delivery's fields from its body and query string (the body wins)."""
    fields: dict[str, object] = {
        k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()
    }
    fields.pop("token", None)  # the verification token is ours, not a field
    fields.update(_body_fields(content_type.split(";")[0].strip().lower(), content_type, body))
    return delivery_from_fields(fields, tz or ZoneInfo("UTC"))


def delivery_from_fields(fields: dict[str, object], tz: ZoneInfo) -> Delivery:
    problems: list[str] = []
    text = {_storable(str(k), problems): _storable(_text(v), problems) for k, v in fields.items()}
    if _is_unsubscription(text):
        return _unsubscription(text, problems)
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
        "dtmf": "dtmf",
    }
    values: dict[str, Any] = {}  # Delivery's str fields by name; Any so ** can spread it
    extra = {}
    for key, value in text.items():
        if key in known and not values.get(known[key]):
            values[known[key]] = value
        elif key not in {"start_at", "end_at", "duration"}:
            extra[key] = value
    # The status API names the bridge `from` (or `caller_id`); the push gives both bridge and from.
    values.setdefault("bridge", text.get("caller_id") or text.get("from", ""))
    status = values.get("status", "")
    if len(status) > MAX_STATUS:
        problems.append(f"status longer than {MAX_STATUS} characters, cut: {status[:40]!r}")
        values["status"] = status[:MAX_STATUS]
    url = values.get("recording_url", "")
    if url and not _is_link(url):
        problems.append("recording_url is not an http(s) link of at most 1000 characters: not kept")
        values["recording_url"] = ""
    if keys := values.get("dtmf", ""):
        try:
            values["dtmf"] = keypresses_of(keys)
        except MalformedDelivery as exc:
            problems.append(f"{exc}: not kept")
            values["dtmf"] = ""
    return Delivery(
        **values,
        start_at=_time_field(text.get("start_at", ""), tz, "start_at", problems),
        end_at=_time_field(text.get("end_at", ""), tz, "end_at", problems),
        duration=_duration_field(text.get("duration", ""), problems),
        extra=extra,
        problems=tuple(problems),
    )


def keypresses_of(text: str) -> str:
    """The keys pressed, as `19*`: spaces and commas between them dropped; anything that is
    not a keypad key (or too many) makes the whole value unreadable."""
    keys = re.sub(r"[\s,]", "", text)
    if len(keys) > MAX_KEYPRESSES or keys.strip(KEYPAD):
        raise MalformedDelivery(f"dtmf is not keypad keys: {text[:40]!r}")
    return keys


def _is_unsubscription(text: dict[str, str]) -> bool:
    """`voice:unsubscription` carries no event name: it is known by its documented shape,
    `{"id", "receiver", "type", "value", "created_at", "status": "Unsubscriber created ..."}`."""
    return "receiver" in text and (
        text.get("status", "").lower().startswith("unsubscriber")
        or {"type", "value"} <= text.keys()
    )


def _unsubscription(text: dict[str, str], problems: list[str]) -> Delivery:
    """Only the opted-out number: no call id or status, so it can never settle a call."""
    try:
        number = normalize_number(text["receiver"], region="")
    except ValidationError:
        problems.append(f"receiver is not a phone number: {text['receiver'][:40]!r}")
        return Delivery(extra=text, problems=tuple(problems))
    return Delivery(unsubscribed=(number,), extra=text, problems=tuple(problems))


def _storable(value: str, problems: list[str]) -> str:
    """Text a database can hold: PostgreSQL refuses NUL, and UTF-8 cannot encode a lone
    surrogate (JSON's `\\ud800`). Dropped or replaced, and said so."""
    if "\x00" in value:
        value = value.replace("\x00", "")
        if NUL_REMOVED not in problems:
            problems.append(NUL_REMOVED)
    try:
        value.encode()
    except UnicodeEncodeError:
        value = value.encode(errors="replace").decode()
        if SURROGATE_REPLACED not in problems:
            problems.append(SURROGATE_REPLACED)
    return value


def _is_link(url: str) -> bool:
    """Only http(s) links are ever kept as links (never javascript:, data: ...)."""
    return len(url) <= MAX_URL and urlsplit(url).scheme.lower() in ("http", "https")


def _time_field(value: str, tz: ZoneInfo, name: str, problems: list[str]) -> datetime | None:
    try:
        moment = provider_time(value, tz)
    except MalformedDelivery as exc:
        problems.append(f"{name}: {exc}")
        return None
    if moment is not None and not EARLIEST <= moment <= LATEST:
        problems.append(f"{name} out of range: {value[:40]!r}")
        return None
    return moment


def _duration_field(value: str, problems: list[str]) -> int | None:
    try:
        seconds = _seconds(value)
    except MalformedDelivery as exc:
        problems.append(str(exc))
        return None
    if seconds is not None and seconds > MAX_SECONDS:
        problems.append(f"duration out of range: {value[:40]!r}")
        return None
    return seconds


def _body_fields(kind: str, content_type: str, body: bytes) -> dict[str, object]:
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
            str(part.get_param("name", header="content-disposition")): _decode(
                # typeshed allows Message too; decode=True on a leaf part gives bytes or None
                part.get_payload(decode=True) or b""  # type: ignore[arg-type]
            )
            for part in message.iter_parts()
            if part.get_param("name", header="content-disposition")
        }
    # JSON is the documented format; anything else unnamed is tried as JSON too.
    return _json_object(_decode(body))


def _json_object(text: str) -> dict[str, object]:
    try:
        try:
            data = _json(text)
        except ValueError as strict_error:
            try:
                data = _json(_lenient(text))
            except ValueError:
                raise MalformedDelivery(f"body is not JSON: {strict_error}") from None
    except RecursionError:
        raise MalformedDelivery("body is nested too deeply to be a delivery") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        if not data["data"]:
            raise EmptyAnswer("a status answer without rows: nothing to report")
        data = data["data"][0]  # a status-API answer: {"status": 200, "data": [{...}]}
    if not isinstance(data, dict):
        raise MalformedDelivery(f"expected a JSON object, got {type(data).__name__}")
    return data


def _json(text: str) -> object:
    return json.loads(text, parse_int=_int_or_text)


def _int_or_text(digits: str) -> int | str:
    return int(digits) if len(digits) <= MAX_INT_DIGITS else digits


def _lenient(text: str) -> str:
    """Quote the docs' bare phone numbers like 91806828XXXX and drop trailing commas.
    Possessive quantifiers (no backtracking) keep this linear in the body's length: a body
    such as `{"a":1XXXX…` with no end must not cost seconds of CPU."""
    text = BARE_NUMBER.sub(lambda m: f'{m[1]}"{m[2]}"' if "X" in m[2] else m[0], text)
    return TRAILING_COMMA.sub(r"\1", text)


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
            f"unreadable time {value[:40]!r}: expected YYYY-MM-DD hh:mm:ss"
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
        raise MalformedDelivery(f"unreadable duration {value[:40]!r}") from None
    if seconds < 0:
        raise MalformedDelivery(f"negative duration {value[:40]!r}")
    return seconds
