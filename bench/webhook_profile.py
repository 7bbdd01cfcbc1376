"""Where a webhook delivery's time goes, in-process (no gunicorn, no network): the diagnosis
behind bench/webhook_load.py's figures.

With Django's test Client on one database it measures, per delivery (median over --deliveries,
after a warm-up, each delivery distinct, half of them matching a call in flight):

- the whole request: the baseline view (one INSERT) and the portal's webhook view;
- the portal's `CallEvent.objects.ingest` alone, and its parts as ingest runs them: parsing,
  finding the call, the event INSERT (with its call), applying the outcome;
- a sketch of a cheaper webhook, to size the next step (it re-implements the step here, in the
  benchmark, and is not the application's code): "store only" (parse and INSERT the event;
  matching left to the background worker);
- the SQL statements of one matched and one unmatched delivery, and with --profile the top
  functions (cProfile) of the portal view.

Run from the repository root (the database is migrated, not emptied; use a benchmark database):

    .venv/bin/python bench/webhook_profile.py --database-url sqlite:////tmp/bench_hooks.sqlite3
    .venv/bin/python bench/webhook_profile.py \\
        --database-url postgres://postgres@127.0.0.1:55432/bench_hooks --profile
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
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


def new_event(body: bytes):
    from calls.models import CallEvent

    key = hashlib.sha256(b"webhook\nPOST\n\n" + body).hexdigest()
    return CallEvent(
        source="webhook",
        method="POST",
        content_type="application/json",
        query="",
        body=body.decode(),
        dedupe_key=key,
    )


def store_only(body: bytes) -> None:
    event = new_event(body)
    event.read(body)
    event.save()


def timed(function, bodies: list[bytes]) -> float:
    times = []
    for body in bodies:
        began = time.perf_counter()
        function(body)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def steps(bodies: list[bytes]) -> dict[str, float]:
    """The parts of the current ingest, timed one by one on the same deliveries."""
    from django.db import transaction

    from calls.models import find_call_for

    parts: dict[str, list[float]] = {}

    def clock(name, function):
        began = time.perf_counter()
        out = function()
        parts.setdefault(name, []).append((time.perf_counter() - began) * 1000)
        return out

    def insert(event):
        with transaction.atomic():
            event.save()

    for body in bodies:
        event = new_event(body)
        delivery = clock("parse", lambda e=event, b=body: e.read(b))
        call = clock("find the call (1-2 SELECTs)", lambda d=delivery: find_call_for(d))
        event.call = call
        clock("INSERT event with its call (own transaction)", lambda e=event: insert(e))
        if call is not None:
            clock(
                "apply_outcome (SELECT FOR UPDATE, COUNT, UPDATE)",
                lambda d=delivery, e=event, c=call: c.apply_outcome(
                    d, event_id=e.pk, received_at=e.received_at
                ),
            )
    return {name: statistics.median(values) for name, values in parts.items()}


def statements(body: bytes) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from calls.models import CallEvent

    with CaptureQueriesContext(connection) as queries:
        CallEvent.objects.ingest(source="webhook", body=body)
    return [q["sql"][:110] for q in queries.captured_queries]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default="sqlite:////tmp/bench_hooks.sqlite3",
        help="a benchmark database (migrated, calls added; not emptied)",
    )
    parser.add_argument("--deliveries", type=int, default=400, help="per measurement")
    parser.add_argument("--profile", action="store_true", help="cProfile the portal view")
    args = parser.parse_args()
    setup(args.database_url)
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client, override_settings

    from bench.baseline.views import create_table
    from calls.models import CallEvent

    call_command("migrate", verbosity=0)
    create_table()
    client = Client()
    headers = {"Authorization": f"Bearer {SECRET}"}

    def portal(body: bytes) -> None:
        response = client.post(
            "/webhooks/mobtexting/", body, content_type="application/json", headers=headers
        )
        assert response.status_code in (200, 202), response.content

    def baseline(body: bytes) -> None:
        with override_settings(ROOT_URLCONF="bench.baseline.urls"):
            response = client.post("/webhooks/baseline/", body, content_type="application/json")
        assert response.status_code == 202, response.content

    n = args.deliveries
    for function in (portal, baseline, store_only):
        timed(function, deliveries(20))  # warm-up
    rows = [
        ("request: baseline view (one INSERT)", timed(baseline, deliveries(n))),
        ("request: portal webhook view", timed(portal, deliveries(n))),
        (
            "ingest() alone, current",
            timed(lambda b: CallEvent.objects.ingest(source="webhook", body=b), deliveries(n)),
        ),
        ("sketch: store only (match later)", timed(store_only, deliveries(n))),
    ]
    print(f"\nWebhook cost per delivery on {connection.vendor}, in-process, median of {n}")
    for name, ms in rows:
        print(f"  {name:<58} {ms:6.2f} ms")
    print("current ingest, step by step (the last: matched deliveries only):")
    for name, ms in steps(deliveries(n)).items():
        print(f"  {name:<58} {ms:6.2f} ms")
    matched, unmatched = deliveries(2)
    for label, body in (("matched", matched), ("unmatched", unmatched)):
        sqls = statements(body)
        print(f"SQL statements of one {label} delivery: {len(sqls)}")
        for sql in sqls:
            print(f"    {sql}")
    if args.profile:
        bodies = deliveries(n)
        profiler = cProfile.Profile()
        profiler.enable()
        for body in bodies:
            portal(body)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        print(out.getvalue())


if __name__ == "__main__":
    main()
