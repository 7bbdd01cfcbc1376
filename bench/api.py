"""Placing a call: the REST API (`POST /api/v1/calls`) against the call form's POST
(`/calls/new/`), under the same concurrent clients, in one run, on PostgreSQL.

In a child step it (1) recreates the database, migrates it, and makes a bridge, an audio, a
superuser's session and an API key; (2) starts gunicorn (`obdportal.wsgi`, default 4 sync
workers) on a free loopback port; (3) drives each target with N concurrent clients (default 50,
threads, one keep-alive session each) for D seconds twice: closed loop (each client sends again
as soon as it is answered: capacity, and latency that is queueing once 50 clients outnumber 4
workers on 2 cores) and open loop (the clients share a fixed offered rate, --rate, default 20/s:
below capacity the latency is the service time, counted from each request's due instant so a
wait for a free client counts), the two targets alternated for --rounds rounds; (4) checks every 201/302 made exactly one pending call. Both paths store the call pending
and queue its send; the send itself is the worker's (none runs here).

The clients share the machine with the server, so compare the two targets of one run, not the
absolute milliseconds.

    .venv/bin/python bench/api.py
    .venv/bin/python bench/api.py --clients 50 --duration 20 --rounds 2 --workers 4
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = Path(PYTHON).with_name("gunicorn")
NUMBERS = ["+91 88671 35123", "+91 98450 12345", "+91 99000 11223", "+91 80500 44556"]
SETUP = """
from django.contrib.auth.models import User
from django.test import Client
from calls.models import ApiKey, AudioAsset, Bridge
bridge = Bridge.objects.create(number="918068287602", label="Bench")
audio = AudioAsset.objects.create(name="Bench", sound_id="39888925-718e-43bb-a8b1-d4a3c0de0001")
user = User.objects.create_superuser("bench", password="x")
client = Client()
client.force_login(user)
key = ApiKey(name="Bench", scopes=["calls:write", "calls:read"])
secret = key.issue()
key.save()
print(json.dumps({"bridge": bridge.pk, "audio": audio.pk, "secret": secret,
                  "session": client.cookies["sessionid"].value}))
"""


def recreate(url: str) -> None:
    parts = urlsplit(url)
    admin = parts._replace(path="/postgres").geturl()
    name = parts.path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:  # not listening yet, or still starting
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer at {url}")


class Target:
    """One way of placing a call, as one client does it."""

    name = ""

    def __init__(self, base: str, fixture: dict[str, object]) -> None:
        self.base, self.fixture = base, fixture

    def session(self) -> requests.Session:
        return requests.Session()

    def place(self, session: requests.Session, n: int) -> int:
        raise NotImplementedError


class Api(Target):
    name = "API POST /api/v1/calls"

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.fixture['secret']}"
        return session

    def place(self, session: requests.Session, n: int) -> int:
        body = {
            "bridge": self.fixture["bridge"],
            "to": NUMBERS[n % len(NUMBERS)],
            "audio": self.fixture["audio"],
        }
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        return session.post(f"{self.base}/api/v1/calls", json=body, headers=headers).status_code


class Form(Target):
    name = "form POST /calls/new/"

    def session(self) -> requests.Session:
        session = requests.Session()
        session.cookies.set("sessionid", str(self.fixture["session"]))
        page = session.get(f"{self.base}/calls/new/")
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert found, "no CSRF token on the form page"
        session.headers["X-CSRFToken"] = found[1]
        return session

    def place(self, session: requests.Session, n: int) -> int:
        data = {
            "bridge": self.fixture["bridge"],
            "to": NUMBERS[n % len(NUMBERS)],
            "audio": self.fixture["audio"],
            "interval": "0",
            "idempotency_key": str(uuid.uuid4()),
        }
        url = f"{self.base}/calls/new/"
        return session.post(url, data=data, allow_redirects=False).status_code


def summary(target: Target, latencies: list[float], elapsed: float) -> dict[str, object]:
    ms = sorted(x * 1000 for x in latencies)
    return {
        "target": target.name,
        "requests": len(ms),
        "per_second": round(len(ms) / elapsed, 1),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(ms[max(int(len(ms) * 0.99) - 1, 0)], 1),
        "max_ms": round(ms[-1], 1),
    }


def run_clients(
    target: Target, clients: int, next_due: Callable[[float], float | None]
) -> dict[str, object]:
    """Each client sends, one request at a time, whenever `next_due(start)` gives it a due
    instant (it sleeps until then), until it gives None. Latency is counted from the due
    instant: a request that waited for a free client counts its wait (no coordinated omission)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    sessions = [target.session() for _ in range(clients)]
    start = threading.Barrier(clients + 1)
    began: list[float] = []

    def client(session: requests.Session, me: int) -> None:
        start.wait()
        n = me
        mine: list[float] = []
        seen: dict[int, int] = {}
        while (due := next_due(began[0])) is not None:
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            status = target.place(session, n)
            mine.append(time.perf_counter() - due)
            seen[status] = seen.get(status, 0) + 1
            n += clients
        with lock:
            latencies.extend(mine)
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count

    threads = [threading.Thread(target=client, args=(s, i)) for i, s in enumerate(sessions)]
    for thread in threads:
        thread.start()
    load_before = os.getloadavg()[0]
    began.append(time.perf_counter())
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began[0]
    return summary(target, latencies, elapsed) | {
        "statuses": statuses,
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def closed_loop(target: Target, clients: int, duration: float) -> dict[str, object]:
    """Every client sends its next request as soon as its last is answered: the server's
    capacity, and latency that is mostly queueing once the clients outnumber its workers."""

    def next_due(start: float) -> float | None:
        now = time.perf_counter()
        return now if now < start + duration else None

    return run_clients(target, clients, next_due) | {"loop": "closed"}


def open_loop(target: Target, clients: int, duration: float, rate: float) -> dict[str, object]:
    """The clients share a fixed offered rate (request i due at start + i / rate), whatever
    the answers take: below capacity, the latency is the service time, not a queue's."""
    sent = iter(range(int(duration * rate)))
    lock = threading.Lock()

    def next_due(start: float) -> float | None:
        with lock:
            i = next(sent, None)
        return None if i is None else start + i / rate

    return run_clients(target, clients, next_due) | {"loop": f"open {rate:g}/s"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:54329/obd_api_bench"
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--rate", type=float, default=20, help="offered requests/s of the open-loop runs"
    )
    args = parser.parse_args()

    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "DB_CONN_MAX_AGE": "3600",
        "OBD_API_REQUESTS_PER_MINUTE": "10000000",
        "OBD_REDIAL_WARN_MINUTES": "0",
        "MOBTEXTING_API_TOKEN": "",
        "LOG_LEVEL": "WARNING",
    }
    recreate(args.database_url)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    made = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", "import json\n" + SETUP],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    fixture = json.loads(made.stdout.strip().splitlines()[-1])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            str(GUNICORN),
            "obdportal.wsgi",
            "-w",
            str(args.workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    results = []
    try:
        wait_for(f"{base}/healthz")
        targets: list[Target] = [Api(base, fixture), Form(base, fixture)]
        for round_ in range(args.rounds):
            for target in targets if round_ % 2 == 0 else targets[::-1]:
                for result in (
                    closed_loop(target, args.clients, args.duration),
                    open_loop(target, args.clients, args.duration, args.rate),
                ):
                    result["round"] = round_ + 1
                    results.append(result)
                    print(json.dumps(result), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    placed = sum(r["statuses"].get(201, 0) + r["statuses"].get(302, 0) for r in results)  # type: ignore[union-attr]
    with psycopg.connect(args.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM calls_calllog WHERE status = 'pending'").fetchone()
    stored = row[0] if row else 0
    print(json.dumps({"placed_answers": placed, "pending_calls_stored": stored}))
    for name in (Api.name, Form.name):
        for loop in ("closed", "open"):
            mine = [r for r in results if r["target"] == name and str(r["loop"]).startswith(loop)]
            print(
                f"{name}, {loop} loop: p99 {max(r['p99_ms'] for r in mine)} ms (worst round), "  # type: ignore[type-var]
                f"{sum(r['per_second'] for r in mine) / len(mine):.1f} calls/s (mean of rounds)"  # type: ignore[misc]
            )
    return 0 if placed == stored else 1


if __name__ == "__main__":
    sys.exit(main())
