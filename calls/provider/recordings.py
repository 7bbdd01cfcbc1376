"""Finding one call's recording among the rows of the provider's recordings list (GET
voice/recordings: `call_from`, `call_to`, `audio`, `created_at`). Pure: rows in, a link out.

The list cannot be asked for one call (no id filter is documented), only for a range of days, so
the call is recognised by its pair of numbers and when the recording was made. The only
documented row is an inbound call (customer → our number); which way round an outbound call is
listed is not, so the pair is matched either way (docs/provider-shapes.md)."""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from calls.provider.base import Row
from calls.provider.listing import number_text
from calls.webhooks import MalformedDelivery, provider_time

# A recording is made while the call runs: from a little before our start time (clocks differ)
# to a couple of hours after it (a long call, retries with `interval`).
EARLIER = timedelta(minutes=2)
LATER = timedelta(hours=2)
# Pre-signed S3 links run long (signature, credentials, expiry); longer is no link of theirs.
MAX_LINK = 4000
# A link as S3 writes one (and a time, its one space aside): printable, no spaces or controls.
PRINTABLE = re.compile(r"[!-~]+")


@dataclass(frozen=True)
class Recording:
    """One readable row of the list."""

    ends: tuple[str, str]  # (call_from, call_to) as digits
    made: datetime
    link: str


@dataclass(frozen=True)
class RecordingPick:
    link: str | None  # the call's recording closest in time; None when no row is the call's
    unreadable: int  # rows without two numbers, a time or an http(s) link


def days_around(started_at: datetime, zone: ZoneInfo) -> str:
    """The list's filter `datetime[r.created_at]`, e.g. `Nov 27, 2026 - Nov 28, 2026`: the day
    the call began and the next, so a call begun before midnight is found too."""
    first = started_at.astimezone(zone)
    return f"{first:%b %d, %Y} - {first + timedelta(days=1):%b %d, %Y}"


def pick_recording(
    rows: list[Row], *, to: str, bridge: str, started_at: datetime, zone: ZoneInfo
) -> RecordingPick:
    """The recording of the call from `bridge` to `to` (listed either way round) made closest
    in time to `started_at`, and how many rows could not be read."""
    found: list[tuple[timedelta, str]] = []
    unreadable = 0
    for row in rows:
        recording = read_recording(row, zone)
        if recording is None:
            unreadable += 1
            continue
        during = started_at - EARLIER <= recording.made <= started_at + LATER
        if during and recording.ends in ((bridge, to), (to, bridge)):
            found.append((abs(recording.made - started_at), recording.link))
    return RecordingPick(min(found)[1] if found else None, unreadable)


def read_recording(row: Row, zone: ZoneInfo) -> Recording | None:
    """A row of the list; None when it lacks either number, its time or an http(s) link."""
    caller, called = number_text(row.get("call_from")), number_text(row.get("call_to"))
    made_at, link = row.get("created_at"), row.get("audio")
    if not (caller and called and isinstance(made_at, str) and isinstance(link, str)):
        return None
    if len(link) > MAX_LINK or not PRINTABLE.fullmatch(link):
        return None
    if len(made_at) > 40 or not PRINTABLE.fullmatch(made_at.replace(" ", "T", 1)):
        return None  # fromisoformat would take a NUL or any character between date and time
    try:
        made = provider_time(made_at, zone)
        scheme = urlsplit(link).scheme.lower()
    except (MalformedDelivery, ValueError):
        return None
    if made is None or scheme not in ("http", "https"):
        return None
    return Recording((_digits(caller), _digits(called)), made, link)


def _digits(number: str) -> str:
    """`+91 88671 35123` as the digits we store."""
    return re.sub(r"\D", "", number)
