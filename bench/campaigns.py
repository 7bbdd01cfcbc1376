"""Campaigns at scale: CSV import time and memory, dispatch throughput, and the pace held.

Three measurements, each in a fresh database (SQLite file and/or PostgreSQL), side by side:

1. import: a 100,000-row CSV (number, Name, otp; 2 % bad rows) validated and stored by the
   import worker's code (`calls.engine.imports.work_on`) in this process. Reports wall time and the peak Python
   heap during the import (tracemalloc) and the process's peak RSS. Targets: < 20 s, < 300 MB.
2. throughput: one Dispatcher (one worker) sends N pending calls through the real
   MobtextingGateway to a local HTTP stub of the provider (a threaded http.server answering the
   documented success shape), pace unlimited (9,999 calls/s). Target: >= 200 calls/s.
3. pace: the same with the pace set (default 20 calls/s, 200 calls) and two dispatchers in
   threads sharing the campaign: the achieved pace over the first to the last send.

Run from the repository root (PostgreSQL must trust the user, or the URL carry a password):

    .venv/bin/python bench/campaigns.py
    .venv/bin/python bench/campaigns.py --databases sqlite --rows 20000 --calls 500
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PG_URL = "postgres://postgres@127.0.0.1:55432/bench_campaigns"
ANSWER = json.dumps(
    {
        "status": "OK",
        "message": "Calls queued successfully",
        "data": [
            {
                "id": "3b69aca9-3b55-4e2d-bfe0-02b910dbe156",
                "credits": 1,
                "status": "queued",
                "created_at": "2024-07-10T06:09:43.054164Z",
            }
        ],
    }
).encode()


def write_csv(path: Path, rows: int) -> None:
    with path.open("w") as out:
        out.write("number,Name,otp\n")
        for i in range(rows):
            number = "12345" if i % 50 == 7 else f"+91 9{i:09d}"[:16]
            out.write(f"{number},Customer {i},{100000 + i % 900000}\n")


class Stub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real provider
    disable_nagle_algorithm = True  # else each answer can wait ~40 ms for a delayed ACK

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, *args) -> None:
        pass


def child(args: argparse.Namespace) -> dict:
    """Runs inside a fresh process with DATABASE_URL set: one database, all three measurements."""
    import resource
    import tracemalloc

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "obdportal.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from calls.engine.imports import work_on
    from calls.models import Bridge, CallLog, Campaign, CampaignImport, IvrFlow
    from calls.provider.mobtexting import MobtextingGateway
    from calls.tasks import Dispatcher

    call_command("migrate", verbosity=0)
    bridge = Bridge.objects.create(number="918068287602", label="bench")
    flow = IvrFlow.objects.create(
        flow_id="24", name="otp", template="Hello {Name}, your otp is {otp}"
    )
    result = {"database": connection.vendor}

    # 1. import (the worker's part, in this process: bench/imports.py measures the whole way)
    campaign = Campaign.objects.create(name="import", bridge=bridge, flow=flow, pace=2)
    content = Path(args.csv).read_bytes()

    def import_rows() -> CampaignImport:
        job = CampaignImport.receive(campaign, "rows.csv", content, None)
        assert job is not None
        work_on(job.pk)
        job.refresh_from_db()
        return job

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    report = import_rows()
    result["import_seconds"] = round(time.perf_counter() - started, 2)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["import_rss_growth_mb"] = round(result["peak_rss_mb"] - rss_before, 1)
    result["import_rows"] = {"accepted": report.accepted, "set_aside": report.set_aside}
    # The Python heap's peak, from a second import: tracemalloc slows it, so it is not timed.
    CallLog.objects.filter(campaign=campaign).delete()
    tracemalloc.start()
    import_rows()
    result["import_peak_heap_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    tracemalloc.stop()
    CallLog.objects.filter(campaign=campaign).delete()

    # 2 and 3 against a local provider stub
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gateway = MobtextingGateway(f"http://127.0.0.1:{server.server_address[1]}/api/v2/", "bench")

    def campaign_of(calls: int, pace: float) -> Campaign:
        target = Campaign.objects.create(name=f"p{pace}", bridge=bridge, flow=flow, pace=pace)
        CallLog.objects.bulk_create(
            CallLog.prepare(
                flow=flow,
                variables={"Name": "A", "otp": "1"},
                seal_secrets=True,
                bridge=bridge,
                to=f"91987{i:07d}",
                campaign=target,
            )
            for i in range(calls)
        )
        target.start()
        return target

    fast = campaign_of(args.calls, 9999)
    started = time.perf_counter()
    Dispatcher(fast, gateway).run()
    elapsed = time.perf_counter() - started
    sent = CallLog.objects.filter(campaign=fast, status="queued").count()
    result["dispatch_calls_per_second"] = round(sent / elapsed, 1)
    result["dispatch_sent"] = sent

    paced = campaign_of(args.pace_calls, args.pace)

    def work() -> None:
        Dispatcher(paced, gateway).run()
        connection.close()

    workers = [threading.Thread(target=work) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    times = sorted(CallLog.objects.filter(campaign=paced).values_list("submitted_at", flat=True))
    span = (times[-1] - times[0]).total_seconds()
    result["pace_set"] = args.pace
    result["pace_achieved"] = round((len(times) - 1) / span, 2) if span else None
    server.shutdown()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--postgres-url", default=PG_URL)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=2000, help="calls for the throughput run")
    parser.add_argument("--pace", type=float, default=20.0)
    parser.add_argument("--pace-calls", type=int, default=200)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return

    workdir = Path(tempfile.mkdtemp(prefix="bench-campaigns-"))
    csv_path = workdir / "rows.csv"
    write_csv(csv_path, args.rows)
    results = []
    for database in args.databases.split(","):
        if database == "sqlite":
            url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        else:
            url = args.postgres_url
            name = url.rsplit("/", 1)[1]
            admin = url.rsplit("/", 1)[0] + "/postgres"
            subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
            subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
        env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--csv",
                str(csv_path),
                "--calls",
                str(args.calls),
                "--pace",
                str(args.pace),
                "--pace-calls",
                str(args.pace_calls),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(
        f"{args.rows} CSV rows; {args.calls} calls unlimited; {args.pace_calls} calls at {args.pace}/s"
    )
    for r in results:
        print(
            f"{r['database']:>10}: import {r['import_seconds']} s, heap peak {r['import_peak_heap_mb']} MB, "
            f"RSS peak {r['peak_rss_mb']} MB (+{r['import_rss_growth_mb']} in the import; "
            f"{r['import_rows']['accepted']} ok, "
            f"{r['import_rows']['set_aside']} set aside) | dispatch {r['dispatch_calls_per_second']} calls/s "
            f"| pace {r['pace_achieved']}/s for {r['pace_set']}/s set "
            f"({round(100 * r['pace_achieved'] / r['pace_set'], 1)} %)"
        )
    if len(results) == 2:
        a, b = results
        print(
            f"ratios {b['database']}/{a['database']}: import time "
            f"{b['import_seconds'] / a['import_seconds']:.2f}, dispatch "
            f"{b['dispatch_calls_per_second'] / a['dispatch_calls_per_second']:.2f}"
        )


if __name__ == "__main__":
    main()
