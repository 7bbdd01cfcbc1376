"""CSV imports in the production shape: the upload request under gunicorn, the reading by a real
`db_worker`, for 300,000 and 600,000 rows and for the issue's 1.2 MB file of 600,000 junk rows.

For each database (a fresh SQLite file and/or a fresh PostgreSQL database):

1. gunicorn (2 sync workers, as the Procfile runs it) and one `db_worker --queue-name campaigns`
   start on the database; a supervisor logs in through the login page; both web workers are
   warmed (pages and two small uploads: a worker's first request loads views and templates).
2. Each file is posted through the new-campaign page (multipart, as a browser posts it). The
   request's wall time is measured at the client, from sending the body (encoded beforehand)
   to the answer: the upload's transfer over loopback, storing the file, the 302.
3. The import's time is the database's own clock, from the upload (`uploaded_at`) to the
   campaign becoming a draft (`finished_at`): waiting for the worker, reading, checking and
   storing every row. The worker's peak RSS is read from /proc at the end.

Files (a flow campaign: number, Name, otp; 2 % bad numbers; the otp sealed as in production):
`--rows 300000,600000`; plus `junk`: an audio campaign's 600,000 rows of "1" (1.2 MB), the file
that ran past gunicorn's timeout when the request read it; and 20 MB of random bytes (the size
cap; it compresses worst, so it is the longest to store; the worker refuses it).

Run from the repository root (PostgreSQL must trust the user, or the URL carry a password):

    .venv/bin/python bench/imports.py
    .venv/bin/python bench/imports.py --databases sqlite --rows 20000 --no-junk
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
PG_URL = "postgres://postgres@127.0.0.1:54329/bench_imports"
PASSWORD = "bench-password-1"
GUNICORN = [sys.executable, "-m", "gunicorn", "obdportal.wsgi", "--workers", "2"]
GUNICORN += ["--no-control-socket"]
DB_WORKER = [sys.executable, "manage.py", "db_worker", "--no-reload", "--interval", "0.5"]


def flow_csv(path: Path, rows: int) -> None:
    with path.open("w") as out:
        out.write("number,Name,otp\n")
        for i in range(rows):
            number = "12345" if i % 50 == 7 else f"91{9000000000 + i}"
            out.write(f"{number},C{i},{100000 + i % 900000}\n")


def junk_csv(path: Path, rows: int) -> None:
    path.write_bytes(b"number\n" + b"1\n" * rows)


def binary_file(path: Path) -> None:
    """Random bytes just under the size cap: what compresses worst, the longest to store."""
    path.write_bytes(os.urandom(20 * 2**20 - 2**10))


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


SETUP = f"""
from django.contrib.auth.models import User
from calls.models import AudioAsset, Bridge, IvrFlow
User.objects.create_superuser("bench", password="{PASSWORD}")
bridge = Bridge.objects.create(number="918068287602", label="bench")
flow = IvrFlow.objects.create(flow_id="24", name="otp", template="Hello {{Name}}, your otp is {{otp}}")
sound = AudioAsset.objects.create(name="reminder", sound_id="bench-sound")
print(bridge.pk, flow.pk, sound.pk)
"""

REPORT = """
from calls.models import CampaignImport
job = CampaignImport.objects.defer("content").get(pk={pk})
print(job.state, (job.finished_at - job.uploaded_at).total_seconds() if job.finished_at else -1,
      job.accepted, job.set_aside)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status)[1]) / 1024


def run_database(url: str, files: list[tuple[str, Path, bool]], workdir: Path) -> list[dict]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "LOG_LEVEL": "WARNING",
        "OBD_WEBHOOK_SECRET": "bench",
        "MOBTEXTING_API_TOKEN": "",
    }
    manage(env, "migrate", "--no-input", "-v", "0")
    bridge, flow, sound = manage(env, "shell", "--no-imports", "-c", SETUP).split()
    port = free_port()
    log = (workdir / "gunicorn.log").open("wb")
    web = subprocess.Popen(
        [*GUNICORN, "--bind", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [*DB_WORKER, "--queue-name", "campaigns"],
        cwd=REPO,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    results = []
    try:
        session = requests.Session()
        for _ in range(100):
            try:
                session.get(f"{base}/accounts/login/", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.3)
        session.post(
            f"{base}/accounts/login/",
            data={
                "username": "bench",
                "password": PASSWORD,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": f"{base}/accounts/login/"},
            timeout=10,
        ).raise_for_status()
        # Warm both gunicorn workers (a worker's first request loads the views and templates):
        # pages and two small uploads, whose imports the worker finishes at once.
        tiny = workdir / "tiny.csv"
        tiny.write_text("number\n919000000001\n")
        for _ in range(10):
            session.get(f"{base}/campaigns/new/", timeout=10).raise_for_status()
        files = [("warm-up", tiny, False), ("warm-up", tiny, False), *files]
        for name, path, plays_flow in files:
            form = {
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
                "name": name,
                "bridge": bridge,
                "flow": flow if plays_flow else "",
                "audio": "" if plays_flow else sound,
                "interval": "0",
                "pace": "2",
                "window_timezone": "Asia/Kolkata",
            }
            # The body is encoded before the clock starts: the server's time, not the client's.
            post = session.prepare_request(
                requests.Request(
                    "POST",
                    f"{base}/campaigns/new/",
                    data=form,
                    files={"csv_file": (path.name, path.read_bytes(), "text/csv")},
                    headers={"Referer": f"{base}/campaigns/new/"},
                )
            )
            started = time.perf_counter()
            answer = session.send(post, allow_redirects=False, timeout=120)
            request_seconds = time.perf_counter() - started
            assert answer.status_code == 302, answer.text[:2000]
            campaign = answer.headers["Location"].rstrip("/").rsplit("/", 1)[1]
            pk = manage(
                env,
                "shell",
                "--no-imports",
                "-c",
                f"from calls.models import CampaignImport; "
                f"print(CampaignImport.objects.get(campaign_id={campaign}).pk)",
            ).strip()
            while True:
                state, seconds, accepted, rejected = manage(
                    env, "shell", "--no-imports", "-c", REPORT.format(pk=pk)
                ).split()
                if state in ("done", "failed", "canceled"):
                    break
                time.sleep(2)
            if name == "warm-up":
                continue
            results.append(
                {
                    "file": name,
                    "bytes": path.stat().st_size,
                    "request_seconds": round(request_seconds, 3),
                    "state": state,
                    "import_seconds": round(float(seconds), 1),
                    "accepted": int(accepted),
                    "set_aside": int(rejected),
                }
            )
        results.append({"worker_peak_rss_mb": round(peak_rss_mb(worker.pid), 1)})
    finally:
        worker.terminate()
        web.terminate()
        worker.wait(timeout=30)
        web.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--postgres-url", default=PG_URL)
    parser.add_argument("--rows", default="300000,600000", help="flow CSVs, rows each")
    parser.add_argument("--no-junk", action="store_true", help="skip the 600,000 junk rows")
    parser.add_argument("--no-binary", action="store_true", help="skip the 20 MB binary file")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-imports-"))
    files = []
    for rows in (int(n) for n in args.rows.split(",") if n):
        path = workdir / f"flow-{rows}.csv"
        flow_csv(path, rows)
        files.append((f"{rows:,} rows", path, True))
    if not args.no_junk:
        path = workdir / "junk-600000.csv"
        junk_csv(path, 600_000)
        files.append(("600,000 junk rows", path, False))
    if not args.no_binary:
        path = workdir / "binary.csv"
        binary_file(path)
        files.append(("20 MB binary", path, False))

    print(f"load average before: {os.getloadavg()[0]:.1f}")
    for database in args.databases.split(","):
        if database == "sqlite":
            url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        else:
            url = args.postgres_url
            name = url.rsplit("/", 1)[1]
            admin = url.rsplit("/", 1)[0] + "/postgres"
            subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
            subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
        *rows, rss = run_database(url, files, workdir)
        for r in rows:
            print(
                f"{database:>10} {r['file']:>18} ({r['bytes'] / 2**20:.1f} MB): "
                f"request {r['request_seconds']} s, import {r['import_seconds']} s "
                f"({r['state']}: {r['accepted']} ready, {r['set_aside']} set aside)"
            )
        print(f"{database:>10} worker peak RSS {rss['worker_peak_rss_mb']} MB")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
