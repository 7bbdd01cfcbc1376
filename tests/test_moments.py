"""`|moment`: every instant written in the reader's zone with the zone's name, even in the hour a
clock change repeats, where Django's own `T` writes nothing."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.utils import timezone

from calls.templatetags.moments import moment


def test_the_repeated_hour_in_new_york_says_which_of_the_two_it_is():
    with timezone.override(ZoneInfo("America/New_York")):
        first = moment(datetime(2026, 11, 1, 5, 30, tzinfo=UTC))
        second = moment(datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "SHORT_DATETIME_FORMAT")

    assert first == "1 Nov 2026, 01:30:00 EDT"
    assert second == "1 Nov, 01:30:00 EST"


def test_an_ordinary_instant_reads_as_the_portals_other_times_do():
    instant = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
    with timezone.override(ZoneInfo("Asia/Kolkata")):
        assert moment(instant) == "4 Dec 2026, 19:30:00 IST"
    assert moment(None) == ""
    assert moment("09:00 IST") == ""  # not an instant: nothing, never a 500


def test_a_zone_without_an_abbreviation_is_named_by_its_place_not_a_bare_offset():
    instant = datetime(2026, 12, 4, 14, 20, 38, tzinfo=UTC)
    with timezone.override(ZoneInfo("Asia/Dubai")):
        assert moment(instant) == "4 Dec 2026, 18:20:38 Dubai"
    with timezone.override(ZoneInfo("America/Argentina/Buenos_Aires")):
        assert moment(instant) == "4 Dec 2026, 11:20:38 Buenos Aires"
    with timezone.override(ZoneInfo("Etc/GMT+4")):  # four hours behind, whatever its name says
        assert moment(instant) == "4 Dec 2026, 10:20:38 -04"
    with timezone.override(UTC):  # a fixed zone keeps its own name
        assert moment(instant) == "4 Dec 2026, 14:20:38 UTC"
