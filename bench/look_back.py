"""The engine's look back for early deliveries: one statement against parts, side by side.

A delivery that comes before the answer to its call's POST is applied unmatched; the engine
looks back for such deliveries whose id a call has learned since (calls/engine/clock.py). A
day's look back was one statement (`queue_again_learned(since=now - LOOK_BACK)`, as at
`4c3c776`); it is now made in parts (`look_back_learned`, LOOK_BACK_PART deliveries a part, one
part a look). This measures, alternately in one run, for each: how long the engine's loop is held
by one statement or part (the slowest), and the whole look.

It needs a PostgreSQL database with calls in it (bench/call_log.py seeds one: `--rows 1000000`)
and adds `--unmatched` deliveries about calls not ours received over the last day (kept between
runs; ids `bench-look-back-N`, none of them a call's).

    .venv/bin/python bench/look_back.py \\
        --database-url postgres://postgres@127.0.0.1:54329/obd_calllog1m_1m --unmatched 200000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SEED = """
INSERT INTO calls_callevent (source, received_at, method, content_type, query, body, parsed,
    parse_error, provider_id, raw_status, outcome, dedupe_key, deliveries, problems, applied_at,
    provider_key)
SELECT 'webhook', now() - (g %% 86400) * interval '1 second', 'POST', 'application/json', '',
    '{}', '{}', '', 'bench-look-back-' || g, 'answered', '', md5('look-back' || g) || md5(g::text),
    1, '', now(), 'bench-look-back-' || g
FROM generate_series(%s, %s) g
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL database with calls")
    parser.add_argument("--unmatched", type=int, default=200_000, help="deliveries not ours")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    os.environ.update(DATABASE_URL=args.database_url, DJANGO_SETTINGS_MODULE="obdportal.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from calls.engine.clock import LOOK_BACK, LOOK_BACK_PART
    from calls.models import CallEvent, CallLog

    kept = CallEvent.objects.filter(provider_key__startswith="bench-look-back-").count()
    if kept < args.unmatched:
        with connection.cursor() as cursor:
            cursor.execute(SEED, [kept + 1, args.unmatched])
            cursor.execute("ANALYZE calls_callevent")
    calls = CallLog.objects.count()

    def one_statement() -> tuple[float, float]:
        began = time.perf_counter()
        CallEvent.objects.queue_again_learned(since=timezone.now() - LOOK_BACK)
        took = (time.perf_counter() - began) * 1000
        return took, took

    def in_parts() -> tuple[float, float]:
        until, at, slowest = timezone.now() - LOOK_BACK, None, 0.0
        began = time.perf_counter()
        while True:
            part = time.perf_counter()
            at = CallEvent.objects.look_back_learned(before=at, until=until, part=LOOK_BACK_PART)
            slowest = max(slowest, (time.perf_counter() - part) * 1000)
            if at is None:
                return slowest, (time.perf_counter() - began) * 1000

    ways = {"one statement": one_statement, f"parts of {LOOK_BACK_PART:,}": in_parts}
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    loads = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for name, way in ways.items():
            figures[name].append(way())
        loads.append(os.getloadavg()[0])
    print(
        f"\n{calls:,} calls, {args.unmatched:,} unmatched deliveries over the last day, "
        f"{args.rounds} rounds alternately; load {min(loads):.1f}-{max(loads):.1f}\n"
    )
    print("| the look a day back | loop held, ms (median; range) | the whole look, ms |")
    print("|---|---|---|")
    for name, runs in figures.items():
        held, whole = [run[0] for run in runs], [run[1] for run in runs]
        print(
            f"| {name} | {statistics.median(held):.0f} ({min(held):.0f}-{max(held):.0f}) "
            f"| {statistics.median(whole):.0f} ({min(whole):.0f}-{max(whole):.0f}) |"
        )


if __name__ == "__main__":
    main()
