"""The clock every test runs on: pinned to one instant, which ticks on from there.

`--now 2026-12-31T23:59:30+00:00` runs the suite as if it were that instant; without it the suite
runs at DEFAULT_NOW, so no test depends on the hour, the date or the season it is run in. Processes
a test starts (db_worker, gunicorn, runserver) are pinned to the same clock through
`sitecustomize.py` in this directory. The browser's own clock is not pinned: the pages show times
the server wrote, and their script reads no clock.

time-machine moves `time.time()`, `datetime.now()` and everything Django builds on them (the
database's `now()` is not used by the portal). `time.monotonic()` is left alone, so timeouts,
sleeps and deadlines in tests still measure real time."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import time_machine
from django.utils import timezone

# A Friday afternoon in UTC that is already Saturday on Kiritimati (UTC+14) and evening in India:
# the hour at which the dashboard test of issue 18 failed.
DEFAULT_NOW = "2026-12-04T14:00:00+00:00"

# Instants that put the zones the portal serves on other dates than UTC, cross a month's and a
# year's end, and cross a daylight-saving change each way; CI runs the clock tests at each
# (`.ci/run`). Each starts 30 s before its boundary, so a test that takes a while crosses it.
INSTANTS = {
    # Year's end: 1 January in India and on Kiritimati, New Year's Eve in UTC and to the west.
    "2026-12-31T23:59:30+00:00": "year end",
    # 28 February in New York and at UTC-12, 1 March in UTC and India.
    "2026-03-01T04:59:30+00:00": "month end to the west",
    # London leaves GMT for BST at 01:00 UTC (the clocks spring forward).
    "2026-03-29T00:59:30+00:00": "London springs forward",
    # New York leaves EDT for EST at 06:00 UTC (the clocks fall back).
    "2026-11-01T05:59:30+00:00": "New York falls back",
    # 1 July in London (BST) and India, 30 June in UTC: a month's end in the east.
    "2026-06-30T23:29:30+00:00": "month end to the east",
    # Noon at UTC-12 the day before; after 10:00 UTC Kiritimati is a day ahead.
    "2026-08-14T11:59:30+00:00": "UTC-12 a day behind, UTC+14 a day ahead",
}

SITE = Path(__file__).resolve().parent


def instant(text: str) -> datetime:
    """An ISO 8601 instant with its offset; a naive one is refused (it would mean any zone)."""
    moment = datetime.fromisoformat(text)
    if moment.utcoffset() is None:
        raise ValueError(f"--now needs an offset, e.g. {DEFAULT_NOW}: got {text!r}")
    return moment


@contextmanager
def pinned(moment: datetime) -> Iterator[None]:
    """This process at `moment` (ticking on), and every Python process it starts as well."""
    with time_machine.travel(moment, tick=True):
        saved = {key: os.environ.get(key) for key in ("OBD_TEST_CLOCK_OFFSET", "PYTHONPATH")}
        # How far the pinned clock is ahead of the real one (behind, if negative).
        lead = moment.timestamp() - time_machine.escape_hatch.time.time()
        os.environ["OBD_TEST_CLOCK_OFFSET"] = repr(lead)
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE), saved["PYTHONPATH"]]))
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def pinned_now() -> datetime:
    """What a test reads as "now": the instant it began at (`--now`), ticking on since. Every
    test's clock is pinned by the autouse fixture in tests/conftest.py; reading it through this
    name says so where it is read."""
    if not time_machine.escape_hatch.is_travelling():
        # Read at import or collection time (a module constant, a parametrize value), it would
        # be the real clock, not the test's.
        raise RuntimeError("pinned_now() is read inside a test (or a fixture), not before")
    return timezone.now()


# The tests that deal with dates, zones, calling hours, schedules, retries and roll-ups: marked
# `clock` (tests/conftest.py), run by CI at each of INSTANTS with `pytest -m clock --now …`.
CLOCK_MODULES = frozenset(
    {
        "tests/browser/test_time_zones.py",
        "tests/callbacks/test_delivery.py",
        "tests/engine/test_sends.py",
        "tests/models/test_call_transitions.py",
        "tests/models/test_campaigns.py",
        "tests/models/test_events.py",
        "tests/models/test_retries.py",
        "tests/test_exports.py",
        "tests/test_hours.py",
        "tests/test_keypresses.py",
        "tests/test_notifications.py",
        "tests/test_optouts.py",
        "tests/test_preferences.py",
        "tests/test_reconcile.py",
        "tests/test_reports.py",
        "tests/test_rollups.py",
        "tests/test_tasks.py",
        "tests/views/test_call_log_paging.py",
        "tests/views/test_calls.py",
        "tests/views/test_campaigns.py",
        "tests/views/test_dashboard.py",
        "tests/views/test_health.py",
        "tests/views/test_scheduled_calls.py",
    }
)
