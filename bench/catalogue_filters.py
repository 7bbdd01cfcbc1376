"""Every combination of the call log's catalogue filters, timed at the database with two sets of
indexes side by side (by default the indexes in the log's order of 0028 and those of 0031, which
carry the other catalogue columns).

For each combination of status, bridge, flow and placed by (each absent, its commonest value or
its rarest: 80 combinations), the call log's own query (CallFilterForm.filter, then keyset_page's
newest page) runs `--runs` times with each index set, alternately, inside a transaction that
drops the other catalogue indexes and is rolled back: the same data, the same server, the same
minute.

Needs a seeded PostgreSQL database, migrated (bench/call_log.py seeds one; 10⁶ or 10⁷ calls):

    .venv/bin/python bench/catalogue_filters.py \
        --database-url postgres://postgres@127.0.0.1:54329/obd_calllog
    .venv/bin/python bench/catalogue_filters.py --compare ordered include --database-url …

The sets (`--compare A B`):

- plain: the foreign-key indexes alone (before 0028);
- ordered: each filter's column, then the log's order (dialled, id) (0028);
- include: ordered, with the other three catalogue columns (status too) as INCLUDE columns,
  which only an index-only scan reads (the log reads whole rows: never one);
- keyed: ordered, with the other three as trailing key columns, which a plain index scan checks
  in the index (an Index Cond) before it reads a row;
- current: ordered, with the other two foreign keys as trailing key columns (0031).

With --current-only it times the migrations' set alone (both columns then show it). The sets
compared exist while it runs (it makes any missing one under its own names, on 10⁷ calls half a
minute each; the current one is the migrations' and must be there, as it is checked to be); it
leaves the database with the current set alone, as the migrations do, unless --keep is given.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FILTERS = {
    "status": "status",
    "bridge": "bridge_id",
    "flow": "flow_id",
    "placed_by": "created_by_id",
}
TARGET_MS = 100.0  # any combination, at 10⁷ calls
# The migrations' names of the catalogue indexes, and the column each leads with.
LEADS = {
    "call_bridge_dialled": "bridge_id",
    "call_flow_dialled": "flow_id",
    "call_placed_by_dialled": "created_by_id",
}
ORDER = "COALESCE(submitted_at, created_at), id"


def others(lead: str, status: bool) -> str:
    """The catalogue columns an index led by `lead` does not lead with (status last, or not)."""
    return ", ".join([c for c in LEADS.values() if c != lead] + ["status"] * status)


# Each set: its indexes' names and what follows `USING btree` (as pg_get_indexdef writes it).
SETS = {
    "plain": {
        "calls_calllog_bridge_id_135fd928": "(bridge_id)",
        "calls_calllog_flow_id_1e51e729": "(flow_id)",
        "calls_calllog_created_by_id_84b3019f": "(created_by_id)",
    },
    "ordered": {f"{name}_0028": f"({lead}, {ORDER})" for name, lead in LEADS.items()},
    "include": {
        f"{name}_include": f"({lead}, {ORDER}) INCLUDE ({others(lead, status=True)})"
        for name, lead in LEADS.items()
    },
    "keyed": {
        f"{name}_keyed": f"({lead}, {ORDER}, {others(lead, status=True)})"
        for name, lead in LEADS.items()
    },
    "current": {
        name: f"({lead}, {ORDER}, {others(lead, status=False)})" for name, lead in LEADS.items()
    },
}
CURRENT = SETS["current"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--compare",
        nargs=2,
        choices=sorted(SETS),
        default=["ordered", "current"],
        metavar="SET",
        help=f"the two index sets to time ({', '.join(SETS)}); default: ordered current",
    )
    parser.add_argument(
        "--current-only",
        action="store_true",
        help="time the migrations' indexes alone (at 10⁷ the plain set takes minutes to build)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the sets compared in place")
    args = parser.parse_args()
    heads = ["current", "current"] if args.current_only else args.compare
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "obdportal.settings")
    import django

    django.setup()
    from django.db import connection, transaction
    from django.http import QueryDict

    from calls.forms.filters import CallFilterForm
    from calls.models import CallLog
    from calls.paging import keyset_page

    # Every catalogue index there while it runs; each set is timed with all the others dropped.
    present = CURRENT | SETS[heads[0]] | SETS[heads[1]]
    with connection.cursor() as cursor:
        for name, definition in present.items():
            if name not in CURRENT:
                cursor.execute(
                    f"CREATE INDEX IF NOT EXISTS {name} ON calls_calllog USING btree {definition}"
                )
        cursor.execute(
            "SELECT relname, pg_get_indexdef(oid), pg_relation_size(oid) FROM pg_class"
            " WHERE relname = ANY(%s)",
            [list(present)],
        )
        found = {name: (sql, size) for name, sql, size in cursor.fetchall()}
        for name, definition in present.items():
            if not found.get(name, ("", 0))[0].endswith(f"USING btree {definition}"):
                sys.exit(f"{name} is not ({definition}): migrate the database first")
        cursor.execute("ANALYZE calls_calllog")
        values = {}
        for key, column in FILTERS.items():
            cursor.execute(
                f"SELECT {column} FROM calls_calllog WHERE {column} IS NOT NULL"
                f" GROUP BY 1 ORDER BY count(*) DESC"
            )
            found_values = [row[0] for row in cursor.fetchall()]
            values[key] = {"common": found_values[0], "rare": found_values[-1]}
        cursor.execute("SELECT count(*) FROM calls_calllog")
        (total,) = cursor.fetchone()

    def timed(params: dict[str, object], kept: str) -> float:
        data = QueryDict(mutable=True)
        data.update({key: str(value) for key, value in params.items()})
        spent = []
        with transaction.atomic():
            if drop := [name for name in present if name not in SETS[kept]]:
                with connection.cursor() as cursor:
                    cursor.execute(f"DROP INDEX {', '.join(drop)}")
            for _ in range(args.runs):
                start = time.perf_counter()
                keyset_page(CallFilterForm(data).filter(CallLog.objects.all()), data)
                spent.append((time.perf_counter() - start) * 1000)
            transaction.set_rollback(True)
        return statistics.median(spent)

    for head in dict.fromkeys(heads):
        mib = [f"{name} {found[name][1] / 2**20:,.0f}" for name in SETS[head]]
        print(f"{head} indexes (MiB): {'; '.join(mib)}")
    print(f"{total:,} calls; load average {os.getloadavg()[0]:.1f}; median of {args.runs} (ms)")
    print(f"{'filters':<46} {heads[0]:>9} {heads[1]:>9} {'ratio':>7}")
    worst = [0.0, 0.0]
    over = [0, 0]
    for size in range(1, len(FILTERS) + 1):
        for keys in itertools.combinations(FILTERS, size):
            for kinds in itertools.product(("common", "rare"), repeat=size):
                params = {k: values[k][kind] for k, kind in zip(keys, kinds, strict=True)}
                first = timed(params, heads[0])
                second = first if args.current_only else timed(params, heads[1])
                for i, spent in enumerate((first, second)):
                    worst[i] = max(worst[i], spent)
                    over[i] += spent >= TARGET_MS
                label = ", ".join(f"{k} {kind}" for k, kind in zip(keys, kinds, strict=True))
                print(f"{label:<46} {first:>9.1f} {second:>9.1f} {second / first:>7.2f}")
    print(
        f"slowest: {heads[0]} {worst[0]:.1f} ms, {heads[1]} {worst[1]:.1f} ms;"
        f" at {TARGET_MS:.0f} ms or over: {over[0]}, {over[1]};"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    if not args.keep and (left := [name for name in present if name not in CURRENT]):
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {', '.join(left)}")


if __name__ == "__main__":
    main()
