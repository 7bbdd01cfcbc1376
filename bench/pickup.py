"""Pickup latency of a call's send: from the moment the request that placed it has committed and
queued its send (when the agent is redirected) to the moment a worker begins its POST
(`submitted_at`). The worker is a real `db_worker` started as `make run` starts it
(`--interval 0.5 --queue-name default`), on SQLite and/or PostgreSQL, with the sandbox gateway.

The calls are placed one at a time, spaced by a random 0 to 1.5 s so that the worker's poll is
met at every phase, each stored and queued as the form does (`CallLog.prepare` with its secret
sealed, then `queue_send` on commit). The sandbox's own outcome tasks run on the same worker
meanwhile, as they would. Reports p50, p90, p99 and the worst.

Run from the repository root (PostgreSQL must trust the user, or the URL carry a password):

    .venv/bin/python bench/pickup.py
    .venv/bin/python bench/pickup.py --databases postgres --calls 300
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PG_URL = "postgres://postgres@127.0.0.1:54329/bench_pickup"
WORKER = ["manage.py", "db_worker", "--no-reload", "--interval", "0.5", "--queue-name", "default"]


def child(calls: int) -> dict:
    """Inside a fresh process with DATABASE_URL set: one database, one worker, `calls` sends."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "obdportal.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from calls.engine.sends import queue_send
    from calls.models import Bridge, CallLog, IvrFlow

    call_command("migrate", verbosity=0)
    bridge = Bridge.objects.create(number="918068287602", label="bench")
    flow = IvrFlow.objects.create(flow_id="24", name="otp", template="Hi {Name}, otp {otp}")
    worker = subprocess.Popen([sys.executable, *WORKER], cwd=REPO, stdout=subprocess.DEVNULL)
    try:
        time.sleep(3)  # past the worker's start-up (and its random start-up delay)
        placed: dict[int, float] = {}
        for i in range(calls):
            time.sleep(random.uniform(0, 1.5))
            with transaction.atomic():
                call = CallLog.prepare(
                    flow=flow,
                    variables={"Name": "Asha", "otp": "482913"},
                    seal_secrets=True,
                    bridge=bridge,
                    to=f"9198765{i:05d}",
                )
                call.not_before = call.created_at
                call.save()
                queue_send(call)
            placed[call.pk] = time.time()  # committed and queued: the request answers now
        deadline = time.monotonic() + 60
        while CallLog.objects.filter(submitted_at=None).exists():
            assert time.monotonic() < deadline, "some sends never began"
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=10)
    began = dict(CallLog.objects.values_list("pk", "submitted_at"))
    waits = sorted(began[pk].timestamp() - at for pk, at in placed.items())
    cuts = statistics.quantiles(waits, n=100, method="inclusive")
    return {
        "database": connection.vendor,
        "calls": calls,
        "p50_ms": round(1000 * cuts[49], 1),
        "p90_ms": round(1000 * cuts[89], 1),
        "p99_ms": round(1000 * cuts[98], 1),
        "max_ms": round(1000 * waits[-1], 1),
        "statuses": dict(
            CallLog.objects.values_list("status").annotate(n=django.db.models.Count("id"))
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--postgres-url", default=PG_URL)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.calls)))
        return

    workdir = Path(tempfile.mkdtemp(prefix="bench-pickup-"))
    for database in args.databases.split(","):
        if database == "sqlite":
            url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        else:
            url = args.postgres_url
            name = url.rsplit("/", 1)[1]
            admin = url.rsplit("/", 1)[0] + "/postgres"
            subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
            subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "LOG_LEVEL": "WARNING",
            "MOBTEXTING_API_TOKEN": "",  # the sandbox
        }
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--calls", str(args.calls)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        load = os.getloadavg()[0]
        print(
            f"{r['database']:>10}: {r['calls']} calls, pickup p50 {r['p50_ms']} ms, "
            f"p90 {r['p90_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms "
            f"(load {load:.1f}; {r['statuses']})"
        )


if __name__ == "__main__":
    main()
