"""Where a webhook delivery's time goes, in-process (no gunicorn, no network), and how fast one
deliveries worker applies them: the diagnosis behind bench/webhook_load.py's figures.

On one database, with Django's test Client, per delivery (median over --deliveries, after a
warm-up, each delivery distinct, half of them for a call in flight):

- the whole request: the baseline view (one INSERT) and the portal's webhook door (one INSERT …
  ON CONFLICT, then 202);
- the deliveries worker: outcomes applied per second by one worker (`apply_waiting`) at batch
  sizes 1 (one delivery per transaction, as the request applied them before) and 500 (the
  default), side by side on the same kind of deliveries;
- the SQL statements of one batch, and with --profile the top functions (cProfile) of a batch.

Run from the repository root (the database is migrated, not emptied; use a benchmark database):

    .venv/bin/python bench/webhook_profile.py --database-url sqlite:////tmp/bench_hooks.sqlite3
    .venv/bin/python bench/webhook_profile.py \\
        --database-url postgres://postgres@127.0.0.1:55432/bench_hooks --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-webhook-secret"


def setup(url: str) -> None:
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="obdportal.settings",
        OBD_WEBHOOK_SECRET=SECRET,
        MOBTEXTING_API_TOKEN="",
        ALLOWED_HOSTS="testserver",
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
    )
    sys.path[:0] = [str(REPO), str(REPO / "bench")]
    import django

    django.setup()


def deliveries(n: int) -> list[bytes]:
    """n distinct pushes, every other one for a call put in flight for it."""
    import webhook_load

    calls = webhook_load.prepare(n)
    gen = webhook_load.Deliveries(calls, seed=time.time_ns())
    return [gen.next() for _ in range(n)]


def timed(function, bodies: list[bytes]) -> float:
    times = []
    for body in bodies:
        began = time.perf_counter()
        function(body)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def applied_per_second(bodies: list[bytes], batch: int) -> float:
    """Store the bodies, then time one worker applying all of them."""
    from calls.models import CallEvent
    from calls.models.events import apply_waiting

    for body in bodies:
        CallEvent.objects.store(source="webhook", body=body)
    began = time.perf_counter()
    applied = 0
    while claimed := apply_waiting(batch):
        applied += claimed
    return applied / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default="sqlite:////tmp/bench_hooks.sqlite3",
        help="a benchmark database (migrated, calls added; not emptied)",
    )
    parser.add_argument("--deliveries", type=int, default=400, help="per request measurement")
    parser.add_argument("--applied", type=int, default=4000, help="per worker measurement")
    parser.add_argument("--profile", action="store_true", help="cProfile a worker's batches")
    args = parser.parse_args()
    setup(args.database_url)
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from bench.baseline.views import create_table
    from calls.models import CallEvent
    from calls.models.events import apply_waiting

    call_command("migrate", verbosity=0)
    create_table()
    client = Client()
    headers = {"Authorization": f"Bearer {SECRET}"}

    def portal(body: bytes) -> None:
        response = client.post(
            "/webhooks/mobtexting/", body, content_type="application/json", headers=headers
        )
        assert response.status_code == 202, response.content

    def baseline(body: bytes) -> None:
        with override_settings(ROOT_URLCONF="bench.baseline.urls"):
            response = client.post("/webhooks/baseline/", body, content_type="application/json")
        assert response.status_code == 202, response.content

    n = args.deliveries
    for function in (portal, baseline):
        timed(function, deliveries(20))  # warm-up
    apply_waiting(10_000)
    rows = [
        ("request: baseline view (one INSERT)", timed(baseline, deliveries(n))),
        ("request: portal webhook door (store, 202)", timed(portal, deliveries(n))),
    ]
    apply_waiting(10_000)
    print(f"\nWebhook cost per delivery on {connection.vendor}, in-process, median of {n}")
    for name, ms in rows:
        print(f"  {name:<58} {ms:6.2f} ms")
    print(f"one deliveries worker, {args.applied} deliveries (half matched), applied per second:")
    rounds = {1: [], 500: []}
    for _ in range(2):  # side by side, twice
        for batch in rounds:
            rounds[batch].append(applied_per_second(deliveries(args.applied), batch))
    for batch, rates in rounds.items():
        print(f"  batch {batch:<4} {statistics.fmean(rates):8.0f}/s  (runs: {rates})")
    print(
        f"  batch 500 / batch 1: {statistics.fmean(rounds[500]) / statistics.fmean(rounds[1]):.1f}x"
    )
    for body in deliveries(50):
        CallEvent.objects.store(source="webhook", body=body)
    with CaptureQueriesContext(connection) as queries:
        apply_waiting(50)
    print(f"SQL statements of one batch of 50: {len(queries.captured_queries)}")
    for query in queries.captured_queries:
        print(f"    {query['sql'][:110]}")
    if args.profile:
        for body in deliveries(args.applied):
            CallEvent.objects.store(source="webhook", body=body)
        profiler = cProfile.Profile()
        profiler.enable()
        while apply_waiting():
            pass
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        print(out.getvalue())


if __name__ == "__main__":
    main()
