"""Campaigns as the tests make them: a draft, its rows uploaded from CSV text, a running one."""

import io
from datetime import UTC, datetime
from decimal import Decimal

from calls.imports import ImportReport, import_rows
from calls.models import Campaign

BAD_NUMBER = "12345 is not a valid phone number with country code (for example +91 88671 35123)."


LATIN_1 = "number,Name,otp\n+91 88671 35123,José,1\n".encode("latin-1")


def make_campaign(bridge, *, flow=None, audio=None, pace: str = "2", **fields) -> Campaign:
    return Campaign.objects.create(
        name="November reminders",
        bridge=bridge,
        flow=flow,
        audio=audio,
        pace=Decimal(pace),
        **fields,
    )


def upload(campaign: Campaign, content: str | bytes, user=None) -> ImportReport:
    raw = content.encode() if isinstance(content, str) else content
    return import_rows(campaign, io.BytesIO(raw), user=user)


def number(i: int) -> str:
    return f"9188671{40000 + i:05d}"


def running_campaign(bridge, sound, rows: int = 3, pace: str = "1", **fields) -> Campaign:
    """A started audio campaign with `rows` pending calls to number(0), number(1), ..."""
    campaign = make_campaign(bridge, audio=sound, pace=pace, **fields)
    upload(campaign, "number\n" + "".join(f"{number(i)}\n" for i in range(rows)))
    assert campaign.start()
    return campaign


def statuses(campaign: Campaign) -> list[str]:
    return list(campaign.calls.order_by("id").values_list("status", flat=True))


def utc(hour: int, minute: int = 0, day: int = 2, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)
