"""The recipient's calling hours: the local time of the number called (phonenumbers knows each
country's zones and, for some countries, a region's), the days of the week and the holidays a
campaign calls on, and the TRAI preset for Indian numbers. Pure: no ORM, no clock.

A number phonenumbers places in several zones (a Russian or a North American mobile) is called
only when every one of them is inside its hours, so nobody is rung early wherever they live;
when those zones have no hour in common, the zone the campaign names, if it is one of them,
else the first phonenumbers gives, decides. A number with no known zone uses the campaign's."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers.timezone import time_zones_for_number

DAY = 24 * 3600
# TRAI: promotional calls to Indian numbers only from 09:00 to 21:00, the recipient's time.
TRAI_COUNTRY_CODE = 91
TRAI_HOURS = (time(9), time(21))
# Looked ahead at most this far for an opening (a year of holidays is not a calling plan).
HORIZON_DAYS = 400

Span = tuple[int, int]  # allowed local times of a day: [start, end) in seconds since midnight


def zones_for(number: str, fallback: str) -> list[ZoneInfo]:
    """The zones the number (digits with country code) may be in; `fallback` when unknown."""
    try:
        names: Iterable[str] = time_zones_for_number(phonenumbers.parse("+" + number))
    except phonenumbers.NumberParseException:
        names = ()
    zones = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):  # "Etc/Unknown": the number gives no zone
            continue
    return zones or [ZoneInfo(fallback)]


def is_indian(number: str) -> bool:
    return number.startswith(str(TRAI_COUNTRY_CODE))


def _seconds(moment: time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def spans(start: time | None, end: time | None) -> list[Span]:
    """A daily window as spans of a day; no window: the whole day; across midnight: two."""
    if start is None or end is None:
        return [(0, DAY)]
    first, last = _seconds(start), _seconds(end)
    if first <= last:
        return [(first, last)]
    return [(0, last), (first, DAY)]


def intersect(these: list[Span], those: list[Span]) -> list[Span]:
    common = [(max(a, c), min(b, d)) for a, b in these for c, d in those]
    return sorted((a, b) for a, b in common if a < b)


@dataclass(frozen=True)
class CallingHours:
    """When a recipient may be called, in their own local time."""

    spans: tuple[Span, ...]
    days: frozenset[int]  # 0 Monday … 6 Sunday
    holidays: frozenset[date]

    def opens_at(
        self, moment: datetime, zones: Sequence[ZoneInfo], prefer: str = ""
    ) -> datetime | None:
        """`moment` itself when the hours are open then in every zone, else the next instant
        they are; None when they never open (no calling day, an empty window)."""
        common = self._common_opening(moment, zones)
        if common is not None or len(zones) == 1:
            return common
        chosen = next((z for z in zones if z.key == prefer), zones[0])
        return self._opens_in(moment, chosen)

    def _common_opening(self, moment: datetime, zones: Sequence[ZoneInfo]) -> datetime | None:
        candidate = moment
        for _ in range(50):  # each round moves to the latest opening; they agree or never do
            openings = [self._opens_in(candidate, zone) for zone in zones]
            if any(opening is None for opening in openings):
                return None
            latest = max(o for o in openings if o is not None)
            if latest == candidate:
                return candidate
            candidate = latest
        return None

    def _opens_in(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        today = moment.astimezone(zone).date()
        for offset in range(HORIZON_DAYS):
            day = today + timedelta(days=offset)
            if day.weekday() not in self.days or day in self.holidays:
                continue
            midnight = datetime.combine(day, time(), tzinfo=zone)
            for start, end in self.spans:
                if midnight + timedelta(seconds=end) > moment:
                    return max(midnight + timedelta(seconds=start), moment)
        return None
