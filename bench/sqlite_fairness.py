"""SQLite's one writer: how long the door's INSERT waits while the deliveries worker applies.

Without HTTP or gunicorn (their noise is bench/webhook_load.py's business): on a fresh SQLite
database, with the portal's settings, this process stores distinct documented deliveries
(`CallEvent.objects.store`, the door's one statement) from 8 threads at a fixed rate, open loop,
and times each from its scheduled moment; half are for calls in flight. Beside it runs one
`manage.py apply_deliveries` from the checkout given (--code, repeatable: compare two versions
of the worker side by side), or none (`--code alone`: the door by itself). With --backlog N,
N deliveries wait already when the worker starts (after a burst, or a worker restart): the
worker then applies full batches while the door stores. Each case runs --rounds times, the
cases interleaved.

    .venv/bin/python bench/sqlite_fairness.py --code alone --code /tmp/before --code .
    FAIRNESS_DATABASE=sqlite:////dev/shm/fairness.sqlite3 .venv/bin/python bench/sqlite_fairness.py

(the database on tmpfs: the same waits without the disk's fsyncs)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATABASE = os.environ.get("FAIRNESS_DATABASE", "sqlite:////tmp/bench_fairness.sqlite3")


def case(code: str, args: argparse.Namespace) -> dict:
    """One case in a child process (Django set up from the checkout that stores)."""
    command = [sys.executable, __file__, "--child", code, "--rate", str(args.rate)]
    command += ["--duration", str(args.duration), "--backlog", str(args.backlog)]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    return dict(json.loads(out.stdout.splitlines()[-1]))


def child(code: str, rate: float, duration: float, backlog: int) -> None:
    env = os.environ | {
        "DATABASE_URL": DATABASE,
        "DJANGO_SETTINGS_MODULE": "obdportal.settings",
        "OBD_WEBHOOK_SECRET": "bench",
        "MOBTEXTING_API_TOKEN": "",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    sys.path[:0] = [str(REPO), str(REPO / "bench")]
    import django

    django.setup()
    import webhook_load
    from django.db import connection

    from calls.models import CallEvent

    total = int(rate * duration)
    webhook_load.recreate_database(DATABASE)
    gen = webhook_load.Deliveries(webhook_load.prepare(total + backlog), seed=1)
    for _ in range(backlog):
        CallEvent.objects.store(source="webhook", body=gen.next())
    bodies = [gen.next() for _ in range(total)]
    connection.close()
    worker = None
    if code != "alone":
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "apply_deliveries"],
            cwd=code,
            env=env | {"PYTHONPATH": str(Path(code).resolve())},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5 if backlog else 3)  # started (with a backlog: applying it)
    waits: list[float] = []

    def store(body: bytes, due: float) -> None:
        CallEvent.objects.store(source="webhook", body=body)
        waits.append((time.monotonic() - due) * 1000)

    with ThreadPoolExecutor(8) as pool:
        start = time.monotonic() + 0.1
        for i, body in enumerate(bodies):
            due = start + i / rate
            if (delay := due - time.monotonic()) > 0:
                time.sleep(delay)
            pool.submit(store, body, due)
    time.sleep(1)
    waiting = CallEvent.objects.waiting().count()
    if worker:
        worker.terminate()
        worker.wait(timeout=20)
    waits.sort()

    def pct(q: float) -> float:
        return waits[min(len(waits) - 1, round(q * (len(waits) - 1)))]

    figures = {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": waits[-1]}
    print(json.dumps(figures | {"waiting": waiting, "load": os.getloadavg()[0]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", action="append", help="a checkout whose worker runs, or alone")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backlog", type=int, default=0, help="deliveries waiting at start")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rate, args.duration, args.backlog)
        return
    for round_ in range(args.rounds):
        for code in args.code or ["alone", "."]:
            r = case(code, args)
            print(
                f"round {round_ + 1} {code:<16} INSERT wait at {args.rate:g}/s: p50 {r['p50']:5.1f}"
                f" p90 {r['p90']:5.1f} p99 {r['p99']:6.1f} max {r['max']:6.1f} ms;"
                f" waiting 1 s after: {r['waiting']}; load {r['load']:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
