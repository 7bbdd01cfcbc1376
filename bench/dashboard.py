"""Dashboard at scale: `build_dashboard` read from the roll-ups vs the old scan of every call.

For each database: migrate, seed 1,000,000 calls over 90 days with call_log.py's builder (with
the triggers off; a seeded database is reused), count them into the tallies, then
time `build_dashboard(period)` for each period twice, side by side: "scan" is the query the
dashboard ran before the roll-ups (one grouped scan of the period's calls, kept here as the
baseline) feeding the same Python roll-up; "tallies" is the dashboard as it is. Both must give
the same numbers. Also times a fold with nothing new, a fold after 1,000 changes, and a rebuild.

    .venv/bin/python bench/dashboard.py                       # PostgreSQL and SQLite, 1M rows
    .venv/bin/python bench/dashboard.py --rows 100000 --databases sqlite:////tmp/d.sqlite3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATABASES = [
    "postgres://postgres@/obd_h1?host=/tmp/pg&port=54329",
    "sqlite:////tmp/obd_h1_dashboard.sqlite3",
]
PERIODS = ["today", "7d", "30d"]
TARGET_MS = 50.0


def scan_sources():
    """The dashboard's sources as they were: the period's calls, grouped, in one scan."""
    from collections import Counter, defaultdict

    from django.db import connection, transaction
    from django.db.models import Count, Sum
    from django.db.models.functions import ExtractHour
    from django.utils import timezone

    from calls.models import CallLog
    from calls.rollups import Group

    def scan(since: datetime) -> list[tuple]:
        query = (
            CallLog.objects.filter(created_at__gte=since, submitted_at__isnull=False)
            .annotate(hour=ExtractHour("created_at", tzinfo=timezone.get_current_timezone()))
            .values_list(
                "bridge_id",
                "flow_id",
                "audio_id",
                "status",
                "provider_status",
                "http_status",
                "hour",
            )
            .annotate(
                n=Count("*"), timed=Count("duration"), seconds=Sum("duration"), cost=Sum("cost")
            )
            .order_by()
        )
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL work_mem = '64MB'")
            return list(query)

    last: dict[str, list[tuple]] = {}

    def groups(since: datetime) -> list[Group]:
        last["rows"] = rows = scan(since)
        return [
            Group(b, f, a, s, p, h, n, t, sec or 0, c) for b, f, a, s, p, h, _, n, t, sec, c in rows
        ]

    def by_hour(since: datetime, zone) -> dict[int, Counter[str]]:
        hours: defaultdict[int, Counter[str]] = defaultdict(Counter)
        for *_, status, _p, _h, hour, n, _t, _s, _c in last.pop("rows"):
            hours[hour][status] += n
        return hours

    return groups, by_hour


def timed(fn, repeat: int) -> tuple[float, object]:
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), result


def child(url: str, rows: int, repeat: int) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "obdportal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", "No directory at")
    sys.path[:0] = [str(REPO), str(REPO / "bench")]
    import django

    django.setup()
    from unittest import mock

    import call_log
    from django.core.management import call_command
    from django.db import connection

    from calls import reports
    from calls.models import CallLog, CallTally
    from calls.rollups import drop_trigger_sql, ensure_tallies, fold_tallies, rebuild_tallies

    if url.startswith("postgres"):
        call_log.ensure_postgres_database(url)
    call_command("migrate", verbosity=0)
    # Seeded without the triggers (a million trigger calls on 2 shared cores take long), then
    # counted as after a migration that lost them: the triggers put back, the calls recounted.
    with connection.cursor() as cursor:
        for sql in drop_trigger_sql(connection.vendor):
            cursor.execute(sql)
    began = time.perf_counter()
    call_log.seed_calls(rows, 50_000)
    seeded = time.perf_counter() - began
    began = time.perf_counter()
    ensure_tallies()
    recounted = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    vendor = connection.vendor
    print(
        f"\n== {vendor}: {CallLog.objects.count():,} calls, {CallTally.objects.count():,} tally rows"
    )
    print(f"   seeding {seeded:.0f} s; triggers put back and calls recounted {recounted:.1f} s")

    groups, by_hour = scan_sources()
    print(f"   {'period':<8} {'scan':>10} {'tallies':>10} {'ratio':>7}  same numbers")
    for period in PERIODS:
        with mock.patch.multiple(reports, placed_groups=groups, placed_by_hour=by_hour):
            scan_ms, old = timed(lambda p=period: reports.build_dashboard(p), repeat)
        tally_ms, new = timed(lambda p=period: reports.build_dashboard(p), repeat)
        same = (
            all(
                getattr(old, f) == getattr(new, f)
                for f in ["placed", "answered", "settled", "avg_answered_duration", "mix", "hours"]
            )
            and old.cost == new.cost
        )
        flag = "" if tally_ms < TARGET_MS else " (over target)"
        print(
            f"   {period:<8} {scan_ms:8.1f}ms {tally_ms:8.1f}ms {scan_ms / tally_ms:6.1f}x  "
            f"{'yes' if same else 'NO'}{flag}"
        )
    ms, _ = timed(fold_tallies, 3)
    print(f"   fold with nothing new: {ms:.1f} ms")
    ids = list(CallLog.objects.exclude(submitted_at=None).order_by("?").values_list("pk")[:1000])
    CallLog.objects.filter(pk__in=[i for (i,) in ids]).update(status="busy", provider_status="BUSY")
    began = time.perf_counter()
    fold_tallies()
    print(f"   fold after 1,000 calls changed: {(time.perf_counter() - began) * 1000:.0f} ms")
    began = time.perf_counter()
    rebuilt = rebuild_tallies()
    print(f"   rebuild: {time.perf_counter() - began:.1f} s ({sum(rebuilt.values()):,} rows)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default=",".join(DATABASES), help="comma-separated URLs")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per period")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows, args.repeat)
        return
    for url in args.databases.split(","):
        command = [sys.executable, __file__, "--child", url, "--rows", str(args.rows)]
        subprocess.run([*command, "--repeat", str(args.repeat)], check=True, cwd=REPO)


if __name__ == "__main__":
    main()
