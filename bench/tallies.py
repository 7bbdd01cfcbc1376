"""The roll-ups' triggers per status change: per row (as 0008 made them) vs per statement (0018),
and a candidate kept here to be measured: per row, its six rows in one INSERT ... VALUES.

On one PostgreSQL database, taking the three trigger sets in turn, round by round in a rotating
order (0008's and 0018's installed from 0018's frozen SQL), it times and counts:

- "one call": a call's status moved by a compare-and-set UPDATE of one row, in its own
  transaction, as the call's methods do;
- "not counted": a one-row UPDATE of columns the tallies do not count (a lease), which the row
  trigger's WHEN skipped in C but the statement trigger (no WHEN possible) must look at;
- "outcome batch": the deliveries worker's write of a batch of outcomes (calls/models/bulk.py's
  one `UPDATE ... FROM unnest(...)` per `--batch` calls), each call its own provider status
  (one of three), duration and cost;
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
from decimal import Decimal
from importlib import import_module
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATABASE = "postgres://postgres@127.0.0.1:54329/obd_tally"
STATUSES = ["queued", "ringing", "answered"]
ANSWERS = ["ANSWER", "BUSY", "NOANSWER"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--changes", type=int, default=500, help="calls changed one by one, and in batches"
    )
    parser.add_argument("--batch", type=int, default=50, help="outcomes written by one statement")
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
    frozen = import_module("calls.migrations.0025_statement_tallies")
    modes = {
        "row": frozen.ROW_TRIGGERS,
        "statement": frozen.STATEMENT_TRIGGERS,
        "row, one INSERT": one_insert_per_row(),
    }

    with connection.cursor() as cursor:
        for statement in modes["statement"]:
            cursor.execute(statement)
    calls = seed(2 * args.changes + args.bulk)
    assert args.changes % args.batch == 0, "--changes must be a multiple of --batch"
    one, outcomes, bulk = (
        calls[: args.changes],
        calls[args.changes : 2 * args.changes],
        calls[2 * args.changes :],
    )
    load = [os.getloadavg()[0]]
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET track_functions = 'pl'")
        order = list(modes)
        for step in range(len(order) * args.rounds):
            round_, at = divmod(step, len(order))
            mode = order[(at + round_) % len(order)]
            for statement in modes[mode]:
                cursor.execute(statement)
            moved = STATUSES[step % 3], STATUSES[(step + 1) % 3]
            for case, measured in [
                ("one call", one_call(cursor, one, *moved)),
                ("not counted", not_counted(cursor, one)),
                ("outcome batch", outcome_batches(cursor, outcomes, args.batch, *moved)),
                ("bulk", bulk_move(cursor, bulk, *moved)),
            ]:
                results.setdefault((case, mode), []).append(measured)
        for statement in modes["statement"]:  # as migrated
            cursor.execute(statement)
    load.append(os.getloadavg()[0])
    report(results, args, load)


def one_insert_per_row() -> list[str]:
    """Row triggers as 0008's (same WHEN), writing a call's rows with one INSERT ... VALUES
    instead of two INSERT ... SELECT ... UNION ALL (one of them for the old rows)."""
    from calls.rollups import CALLS, KEY, SUMS, TALLIES, TRIGGERS, _changed, _rows, _sums

    def rows(row: str, sign: int) -> str:
        return ", ".join(f"({s}, FALSE)" for s in _rows("postgresql", row, _sums(row, str(sign))))

    insert = f"INSERT INTO {TALLIES} ({', '.join(KEY + SUMS)}, folded) VALUES"
    old, new = rows("OLD.", -1), rows("NEW.", 1)
    function = f"""CREATE OR REPLACE FUNCTION calls_tally() RETURNS trigger LANGUAGE plpgsql
        AS $$ BEGIN
            IF TG_OP = 'INSERT' THEN {insert} {new};
            ELSIF TG_OP = 'DELETE' THEN {insert} {old};
            ELSIF OLD.submitted_at IS NULL THEN {insert} {new};
            ELSIF NEW.submitted_at IS NULL THEN {insert} {old};
            ELSE {insert} {old}, {new};
            END IF;
            RETURN NULL;
        END $$"""
    when = {
        "INSERT": "NEW.submitted_at IS NOT NULL",
        "UPDATE": f"(OLD.submitted_at IS NOT NULL OR NEW.submitted_at IS NOT NULL) "
        f"AND ({_changed('postgresql')})",
        "DELETE": "OLD.submitted_at IS NOT NULL",
    }
    return [
        *(f"DROP TRIGGER IF EXISTS {name} ON {CALLS}" for name in TRIGGERS),
        function,
        *(
            f"CREATE TRIGGER {name} AFTER {event} ON {CALLS} FOR EACH ROW WHEN ({condition}) "
            "EXECUTE FUNCTION calls_tally()"
            for name, (event, condition) in zip(TRIGGERS, when.items(), strict=True)
        ),
    ]


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


def outcome_batches(cursor, ids: list[int], size: int, old: str, new: str) -> dict[str, float]:
    sql = (
        "UPDATE calls_calllog AS c SET status = %s, provider_status = v.answer, "
        "duration = v.duration, cost = v.cost FROM unnest(%s::bigint[], %s::varchar[], "
        "%s::integer[], %s::numeric[]) AS v (id, answer, duration, cost) "
        "WHERE c.id = v.id AND c.status = %s"
    )
    batches = [ids[at : at + size] for at in range(0, len(ids), size)]
    statements: list[tuple[str, list[object]]] = []
    for batch in batches:
        answers = [ANSWERS[pk % len(ANSWERS)] for pk in batch]
        durations = [pk % 60 for pk in batch]
        costs = [Decimal(pk % 7) / 10 for pk in batch]
        statements.append((sql, [new, batch, answers, durations, costs, old]))
    result = timed(cursor, statements, size)
    return {key: value / size for key, value in result.items()}  # per call


def bulk_move(cursor, ids: list[int], old: str, new: str) -> dict[str, float]:
    sql = "UPDATE calls_calllog SET status = %s WHERE id = ANY(%s) AND status = %s"
    result = timed(cursor, [(sql, [new, ids, old])], len(ids))
    return {key: value / len(ids) for key, value in result.items()}  # per call moved


def report(results, args, load: list[float]) -> None:
    modes = ["row", "statement", "row, one INSERT"]
    print(
        f"PostgreSQL, {args.rounds} rounds, each: {args.changes} calls changed one by one, "
        f"{args.changes} in outcome batches of {args.batch}, {args.bulk} in one statement; "
        f"load average {load[0]:.2f} -> {load[1]:.2f}"
    )
    print(
        f"| per call changed | {' | '.join(modes)} | {' | '.join(m + ' / row' for m in modes[1:])} |"
    )
    print("|---" * (2 * len(modes)) + "|")
    for case in ["one call", "not counted", "outcome batch", "bulk"]:
        for key, unit in [
            ("ms", "ms"),
            ("trigger_ms", "ms in trigger"),
            ("rows", "tally rows"),
            ("calls", "trigger calls"),
        ]:
            figures = [statistics.median(r[key] for r in results[(case, m)]) for m in modes]
            ratios = [f"{f / figures[0]:.2f}" if figures[0] else "-" for f in figures[1:]]
            cells = " | ".join(f"{f:.3g}" for f in figures)
            print(f"| {case}: {unit} | {cells} | {' | '.join(ratios)} |")


if __name__ == "__main__":
    main()
