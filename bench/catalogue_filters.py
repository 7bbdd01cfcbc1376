"""Every combination of the call log's catalogue filters, timed at the database with the plain
foreign-key indexes (before 0028) and with the indexes in the log's order (0028), side by side.

For each combination of status, bridge, flow and placed by (each absent, its commonest value or
its rarest: 80 combinations), the call log's own query (CallFilterForm.filter, then keyset_page's
newest page) runs `--runs` times with each index set, alternately, inside a transaction that
drops the other set and is rolled back: the same data, the same server, the same minute.

Needs a seeded PostgreSQL database (bench/call_log.py seeds one; 10⁶ or 10⁷ calls):

    .venv/bin/python bench/catalogue_filters.py \
        --database-url postgres://postgres@127.0.0.1:54329/obd_calllog

With --current-only it times the ordered set alone (both columns then show it). Both index
sets exist while it runs (it makes any missing one); it leaves the database with the
ordered set alone, as migration 0028 does.
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

PLAIN = {
    "calls_calllog_bridge_id_135fd928": '"bridge_id"',
    "calls_calllog_flow_id_1e51e729": '"flow_id"',
    "calls_calllog_created_by_id_84b3019f": '"created_by_id"',
}
ORDERED = {
    name: f"{column}, COALESCE(submitted_at, created_at), id"
    for name, column in (
        ("call_bridge_dialled", "bridge_id"),
        ("call_flow_dialled", "flow_id"),
        ("call_placed_by_dialled", "created_by_id"),
    )
}
FILTERS = {
    "status": "status",
    "bridge": "bridge_id",
    "flow": "flow_id",
    "placed_by": "created_by_id",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--current-only",
        action="store_true",
        help="time the migrations' indexes alone (at 10⁷ the plain set takes minutes to build)",
    )
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "obdportal.settings")
    import django

    django.setup()
    from django.db import connection, transaction
    from django.http import QueryDict

    from calls.forms.filters import CallFilterForm
    from calls.models import CallLog
    from calls.paging import keyset_page

    with connection.cursor() as cursor:
        for name, columns in (ORDERED if args.current_only else PLAIN | ORDERED).items():
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON calls_calllog ({columns})")
        cursor.execute("ANALYZE calls_calllog")
        values = {}
        for key, column in FILTERS.items():
            cursor.execute(
                f"SELECT {column} FROM calls_calllog WHERE {column} IS NOT NULL"
                f" GROUP BY 1 ORDER BY count(*) DESC"
            )
            found = [row[0] for row in cursor.fetchall()]
            values[key] = {"common": found[0], "rare": found[-1]}
        cursor.execute("SELECT count(*) FROM calls_calllog")
        (total,) = cursor.fetchone()

    def timed(params: dict[str, object], drop: dict[str, str]) -> float:
        data = QueryDict(mutable=True)
        data.update({key: str(value) for key, value in params.items()})
        spent = []
        with transaction.atomic():
            if drop:
                with connection.cursor() as cursor:
                    cursor.execute(f"DROP INDEX {', '.join(drop)}")
            for _ in range(args.runs):
                start = time.perf_counter()
                keyset_page(CallFilterForm(data).filter(CallLog.objects.all()), data)
                spent.append((time.perf_counter() - start) * 1000)
            transaction.set_rollback(True)
        return statistics.median(spent)

    print(f"{total:,} calls; load average {os.getloadavg()[0]:.1f}; median of {args.runs} (ms)")
    print(f"{'filters':<46} {'plain':>9} {'ordered':>9} {'ratio':>7}")
    worst = {"plain": 0.0, "ordered": 0.0}
    for size in range(1, len(FILTERS) + 1):
        for keys in itertools.combinations(FILTERS, size):
            for kinds in itertools.product(("common", "rare"), repeat=size):
                params = {k: values[k][kind] for k, kind in zip(keys, kinds, strict=True)}
                ordered = timed(params, {} if args.current_only else PLAIN)
                plain = ordered if args.current_only else timed(params, ORDERED)
                worst = {
                    "plain": max(worst["plain"], plain),
                    "ordered": max(worst["ordered"], ordered),
                }
                label = ", ".join(f"{k} {kind}" for k, kind in zip(keys, kinds, strict=True))
                print(f"{label:<46} {plain:>9.1f} {ordered:>9.1f} {ordered / plain:>7.2f}")
    print(
        f"slowest: plain {worst['plain']:.1f} ms, ordered {worst['ordered']:.1f} ms;"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {', '.join(PLAIN)}")


if __name__ == "__main__":
    main()
