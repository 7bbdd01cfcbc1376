"""The roll-ups' triggers per status change: per row (as 0008 made them) vs per statement (0018).

On one PostgreSQL database, alternating the two trigger sets round by round (each installed from
migration 0018's frozen SQL), it times and counts:

- "one call": a call's status moved by a compare-and-set UPDATE of one row, in its own
  transaction, as the call's methods do;
- "not counted": a one-row UPDATE of columns the tallies do not count (a lease), which the row
  trigger's WHEN skipped in C but the statement trigger (no WHEN possible) must look at;
- "bulk": one UPDATE moving `--bulk` calls of one quarter from a status to another.

Per change: the median wall time of the statement (with its commit) at the client, the tally rows
written, and the trigger function's calls and time (pg_stat_xact_user_functions). The session
sets synchronous_commit off, so the figure is the server's work, not the disk's flush.

    .venv/bin/python bench/tallies.py                  # postgres://...:54329/obd_tally
    .venv/bin/python bench/tallies.py --rounds 6 --changes 1000 --bulk 2000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from importlib import import_module
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATABASE = "postgres://postgres@127.0.0.1:54329/obd_tally"
STATUSES = ["queued", "ringing", "answered"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--changes", type=int, default=500, help="one-call changes per round")
    parser.add_argument("--bulk", type=int, default=1000, help="calls moved by one statement")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = args.database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "obdportal.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("PostgreSQL only: SQLite keeps its row triggers.")
    call_command("migrate", verbosity=0)
    frozen = import_module("calls.migrations.0018_statement_tallies")
    from calls.rollups import trigger_sql

    modes = {"row": frozen.ROW_TRIGGERS, "statement": trigger_sql("postgresql")}

    with connection.cursor() as cursor:
        for statement in modes["statement"]:
            cursor.execute(statement)
    calls = seed(args.changes + args.bulk)
    one, bulk = calls[: args.changes], calls[args.changes :]
    load = [os.getloadavg()[0]]
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET track_functions = 'pl'")
        for step in range(2 * args.rounds):  # row, statement, statement, row, row, ...
            mode = list(modes)[(step + 1) // 2 % 2]
            for statement in modes[mode]:
                cursor.execute(statement)
            moved = STATUSES[step % 3], STATUSES[(step + 1) % 3]
            for case, measured in [
                ("one call", one_call(cursor, one, *moved)),
                ("not counted", not_counted(cursor, one)),
                ("bulk", bulk_move(cursor, bulk, *moved)),
            ]:
                results.setdefault((case, mode), []).append(measured)
        for statement in modes["statement"]:  # as migrated
            cursor.execute(statement)
    load.append(os.getloadavg()[0])
    report(results, args, load)


def seed(count: int) -> list[int]:
    """`count` placed calls, queued, created in one quarter hour; their ids."""
    from django.utils import timezone

    from calls.models import Bridge, CallLog, CallTally, IvrFlow
    from calls.rollups import fold_tallies

    bridge, _ = Bridge.objects.get_or_create(number="918068287602", label="Bench")
    flow, _ = IvrFlow.objects.get_or_create(flow_id="24", name="Bench", template="Hello")
    CallLog.objects.all().delete()
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    CallLog.objects.bulk_create(
        [
            CallLog(bridge=bridge, flow=flow, to="918867135123", status="queued", submitted_at=now)
            for _ in range(count)
        ],
        batch_size=5000,
    )
    CallLog.objects.update(created_at=now)
    fold_tallies()
    assert CallTally.objects.filter(folded=False).count() == 0
    return list(CallLog.objects.order_by("id").values_list("id", flat=True))


def counters(cursor) -> tuple[int, int, float]:
    """Tally rows, and the trigger function's calls and milliseconds so far this session."""
    cursor.execute("SELECT count(*) FROM calls_calltally")
    (rows,) = cursor.fetchone()
    cursor.execute(
        "SELECT coalesce(sum(calls), 0), coalesce(sum(total_time), 0) "
        "FROM pg_stat_xact_user_functions WHERE funcname = 'calls_tally'"
    )
    calls, ms = cursor.fetchone()
    return rows, int(calls), float(ms)


def timed(cursor, statements: list[tuple[str, list[object]]], moves: int) -> dict[str, float]:
    """Run each statement in its own transaction; per statement: median ms, rows, trigger calls.
    pg_stat_xact_* counts within a transaction, so the counters are read inside each one."""
    times, rows, calls, trigger_ms = [], 0, 0, 0.0
    for sql, params in statements:
        cursor.execute("BEGIN")
        before = counters(cursor)
        start = time.perf_counter()
        cursor.execute(sql, params)
        times.append(time.perf_counter() - start)
        assert cursor.rowcount == moves, (sql, cursor.rowcount)
        after = counters(cursor)
        cursor.execute("COMMIT")
        rows += after[0] - before[0]
        calls += after[1] - before[1]
        trigger_ms += after[2] - before[2]
    n = len(statements)
    return {
        "ms": statistics.median(times) * 1000,
        "rows": rows / n,
        "calls": calls / n,
        "trigger_ms": trigger_ms / n,
    }


def one_call(cursor, ids: list[int], old: str, new: str) -> dict[str, float]:
    sql = "UPDATE calls_calllog SET status = %s WHERE id = %s AND status = %s"
    return timed(cursor, [(sql, [new, pk, old]) for pk in ids], 1)


def not_counted(cursor, ids: list[int]) -> dict[str, float]:
    sql = "UPDATE calls_calllog SET lease_until = now(), attempts = attempts + 1 WHERE id = %s"
    return timed(cursor, [(sql, [pk]) for pk in ids], 1)


def bulk_move(cursor, ids: list[int], old: str, new: str) -> dict[str, float]:
    sql = "UPDATE calls_calllog SET status = %s WHERE id = ANY(%s) AND status = %s"
    result = timed(cursor, [(sql, [new, ids, old])], len(ids))
    return {key: value / len(ids) for key, value in result.items()}  # per call moved


def report(results, args, load: list[float]) -> None:
    print(
        f"PostgreSQL, {args.rounds} rounds alternating, {args.changes} one-call changes and "
        f"{args.bulk} calls in one statement per round; load average {load[0]:.2f} -> {load[1]:.2f}"
    )
    print("| per call changed | row triggers | statement triggers | statement / row |")
    print("|---|---|---|---|")
    for case in ["one call", "not counted", "bulk"]:
        row, statement = (results[(case, mode)] for mode in ["row", "statement"])
        for key, unit in [("ms", "ms"), ("trigger_ms", "ms in trigger"), ("rows", "tally rows")]:
            before = statistics.median(r[key] for r in row)
            after = statistics.median(r[key] for r in statement)
            ratio = f"{after / before:.2f}" if before else "-"
            print(f"| {case}: {unit} | {before:.4g} | {after:.4g} | {ratio} |")
        calls = [statistics.median(r["calls"] for r in rs) for rs in (row, statement)]
        print(f"| {case}: trigger calls | {calls[0]:.4g} | {calls[1]:.4g} | |")


if __name__ == "__main__":
    main()
