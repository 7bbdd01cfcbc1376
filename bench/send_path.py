"""The campaign send path alone, apart from the webhooks and their worker: a running campaign's
Dispatcher sends `--rows` rows through the real gateway (requests, keep-alive) to a provider
stand-in in a process of its own, and the CPU of the sending process and of its PostgreSQL
backend is divided by the rows sent. bench/system.py measures the whole system; on a machine
others load, its totals move by more than the send path's share, which this isolates.

`--before COMMIT` exports that commit (`git archive`) and runs it and this working tree
alternately, `--rounds` times each, on one migrated database (the two must share its schema);
the medians are printed with the load average.

    .venv/bin/python bench/send_path.py --before 00f9ef8 --rounds 6 --db obd_bench_sends
    .venv/bin/python bench/send_path.py --before 867de0c --rounds 4 --pace 100
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
PG = {"host": "/tmp/pg", "port": 54329, "user": "postgres"}

STANDIN = r"""
import http.server, json, socketserver, sys, uuid
class Provider(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536  # headers and body in one write: no Nagle/delayed-ACK stall
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"status": "OK", "message": "queued", "credits": 0.5,
                           "data": [{"id": str(uuid.uuid4()), "to": "x"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
server = Server(("127.0.0.1", 0), Provider)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

# Run inside the checkout being measured (its code on PYTHONPATH), as a process of its own.
ONE_RUN = r"""
import json, os, sys, time
from datetime import timedelta
import django
django.setup()
from django.db import connection
from calls.models import Bridge, Campaign, CallLog, IvrFlow
from calls.provider.mobtexting import MobtextingGateway
from calls.tasks import Dispatcher

def cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

rows, url, run, pace = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
bridge, _ = Bridge.objects.get_or_create(number="918068287602", defaults={"label": "bench"})
flow, _ = IvrFlow.objects.get_or_create(
    flow_id="24", defaults={"name": "otp", "template": "Hello {Name}, your otp is {otp}"}
)
campaign = Campaign.objects.create(
    name=f"send path {run}", bridge=bridge, flow=flow, pace=pace, status="running"
)
CallLog.objects.bulk_create(
    campaign.new_row(f"9198{run:02d}{i:06d}", {"Name": "A", "otp": str(100000 + i)},
                     seal_secrets=True)
    for i in range(rows)
)
with connection.cursor() as cursor:
    cursor.execute("SELECT pg_backend_pid()")
    backend = cursor.fetchone()[0]
gateway = MobtextingGateway(url, "bench-token")
began_backend, began = cpu(backend), time.process_time()
reason = Dispatcher(campaign, gateway, budget=timedelta(minutes=10)).run()
python_s, postgres_s = time.process_time() - began, cpu(backend) - began_backend
sent = campaign.calls.exclude(submitted_at=None).count()
print(json.dumps({"reason": reason, "sent": sent, "python_ms": python_s * 1000 / sent,
                  "postgres_ms": postgres_s * 1000 / sent, "load": os.getloadavg()[0]}))
"""


def env_for(code: Path, db: str) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": f"postgres://postgres@/{db}?host={PG['host']}&port={PG['port']}",
        "DJANGO_SETTINGS_MODULE": "obdportal.settings",
        "PYTHONPATH": str(code),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "OBD_TRAI_PRESET": "false",
        "MOBTEXTING_API_TOKEN": "bench-token",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="a commit to run beside this tree")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--db", default="obd_bench_sends")
    parser.add_argument(
        "--pace",
        default="9999",
        help="calls a second (default: as fast as it goes; 100: a worker waking between sends, "
        "as in production)",
    )
    args = parser.parse_args()
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.db}"')
    before = Path(tempfile.mkdtemp(prefix="bench-sends-"))
    archive = subprocess.run(["git", "archive", args.before], cwd=REPO, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
    python = sys.executable
    subprocess.run(
        [python, "manage.py", "migrate", "-v", "0"],
        cwd=REPO,
        env=env_for(REPO, args.db),
        check=True,
    )
    standin = subprocess.Popen([python, "-c", STANDIN], stdout=subprocess.PIPE, text=True)
    assert standin.stdout is not None
    url = f"http://127.0.0.1:{standin.stdout.readline().strip()}/api/v2/"
    runs: dict[str, list[dict[str, float]]] = {args.before: [], "working tree": []}
    try:
        for number in range(args.rounds * 2):
            label, code = [(args.before, before), ("working tree", REPO)][number % 2]
            done = subprocess.run(
                [python, "-c", ONE_RUN, str(args.rows), url, str(number), args.pace],
                cwd=code,
                env=env_for(code, args.db),
                capture_output=True,
                text=True,
                check=True,
            )
            runs[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(label, runs[label][-1], file=sys.stderr, flush=True)
    finally:
        standin.kill()
    print(
        f"\n{args.rows} rows a run at a pace of {args.pace}/s, {args.rounds} runs each, "
        "alternately; medians\n"
    )
    print("| | python ms per send | PostgreSQL ms per send | load average |")
    print("|---|---|---|---|")
    for label, results in runs.items():
        python_ms = statistics.median(r["python_ms"] for r in results)
        postgres_ms = statistics.median(r["postgres_ms"] for r in results)
        loads = [r["load"] for r in results]
        print(
            f"| {label} | {python_ms:.2f} | {postgres_ms:.2f} | {min(loads):.1f} to {max(loads):.1f} |"
        )


if __name__ == "__main__":
    main()
