"""Finding one call's recording among the rows of the provider's recordings list (GET
voice/recordings: `call_from`, `call_to`, `audio`, `created_at`). Pure: rows in, a link out.

The list cannot be asked for one call (no id filter is documented), only for a range of days, so
the call is recognised by its number, its bridge and when the recording was made."""

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from calls.provider.base import Row
from calls.webhooks import MalformedDelivery, provider_time

# A recording is made while the call runs: from a little before our start time (clocks differ)
# to a couple of hours after it (a long call, retries with `interval`).
EARLIER = timedelta(minutes=2)
LATER = timedelta(hours=2)
# Pre-signed S3 links run long (signature, credentials, expiry); longer is no link of theirs.
MAX_LINK = 4000


def days_around(started_at: datetime, zone: ZoneInfo) -> str:
    """The list's filter `datetime[r.created_at]`, e.g. `Nov 27, 2026 - Nov 28, 2026`: the day
    the call began and the next, so a call begun before midnight is found too."""
    first = started_at.astimezone(zone)
    return f"{first:%b %d, %Y} - {first + timedelta(days=1):%b %d, %Y}"


def pick_recording(
    rows: list[Row], *, to: str, bridge: str, started_at: datetime, zone: ZoneInfo
) -> str | None:
    """The link of the recording closest in time to `started_at` of a call from `bridge` to
    `to`; None when no row is that call's. Rows that cannot be read are skipped."""
    found: list[tuple[timedelta, str]] = []
    for row in rows:
        if _digits(row.get("call_to")) != to:
            continue
        caller = _digits(row.get("call_from"))
        if caller and caller != bridge:
            continue  # another of our bridges called the same customer
        try:
            made = provider_time(str(row.get("created_at") or ""), zone)
        except MalformedDelivery:
            continue
        link = str(row.get("audio") or "")
        if made is None or not started_at - EARLIER <= made <= started_at + LATER:
            continue
        if len(link) <= MAX_LINK and urlsplit(link).scheme.lower() in ("http", "https"):
            found.append((abs(made - started_at), link))
    return min(found)[1] if found else None


def _digits(value: object) -> str:
    """`+91 88671 35123` or 918867135123 (a JSON number) as the digits we store."""
    return re.sub(r"\D", "", str(value)) if isinstance(value, str | int) else ""
