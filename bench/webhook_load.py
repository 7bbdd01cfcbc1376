"""Webhook under load: the portal's `/webhooks/mobtexting/` against a bare Django app and a
one-INSERT view behind the portal's middleware.

For each database (default: SQLite /tmp/bench_hooks.sqlite3 and PostgreSQL bench_hooks), in a child
process:

1. recreates the database from scratch, migrates it, creates the two baselines' tables and
   pre-creates calls in flight (status queued, with provider ids) for the deliveries to match;
2. starts three gunicorn servers on free loopback ports with the same options (default as in
   production: 2 gthread workers x 4 threads): the portal (`obdportal.wsgi`, OBD_WEBHOOK_SECRET
   set); the bare app (`bench.bare.wsgi`: no apps, no middleware, one view that INSERTs the body:
   the limit for a Django door here); and the baseline (`bench.baseline.wsgi`: the same one-INSERT
   view behind the portal's settings and whole browser middleware);
3. drives all three with the same load, side by side, from an asyncio client in this process (a new
   TCP connection per delivery, like a provider's webhook, `Connection: close`):
   - "paced": open loop at a fixed rate (default 200/s for 20 s). Requests leave on schedule
     whatever the server does, and latency counts from the scheduled time, so a stalled server
     shows up as latency instead of a lower send rate;
   - "max": closed loop, N concurrent clients (default 16) sending as fast as answers come;
   with --rounds N each phase runs N times per target, the order swapped every round;
4. checks that every delivery sent is stored: CallEvent rows (portal) and the baselines' rows are counted
   before and after each run, and matched deliveries must have found their call;
5. reads the CPU time (user + system, from /proc) of the gunicorn workers and, on PostgreSQL, of
   their backends (both servers keep their connection: DB_CONN_MAX_AGE=3600) before and after
   each run: CPU per delivery compares the targets whatever else runs on the machine.

Every delivery is a distinct OBD push as documented (JSON: bridge, from, to, source, mid, flow_id,
start_at, end_at, duration, status, recording_url); half carry the `mid` of a pre-created call,
half are unknown to the portal (they fall back to the number+bridge look-up and stay unmatched).

The load client shares the machine with the servers (2 cores here), so absolute figures move with
the machine; the portal/bare ratios from one run (with the load average printed beside them), and CPU per delivery, are the comparable
figures. The exit status is 1 when a target is missed. gunicorn logs go to --log-dir.

Run from the repository root:

    .venv/bin/python bench/webhook_load.py                          # SQLite and PostgreSQL
    .venv/bin/python bench/webhook_load.py --database-url sqlite:////tmp/bench_hooks.sqlite3
    .venv/bin/python bench/webhook_load.py --rounds 2                # as in RESULTS.md
    .venv/bin/python bench/webhook_load.py --duration 5              # a quick look
    .venv/bin/python bench/webhook_load.py --code /tmp/before --code .  # before/after, in turn
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"  # beside the Python that runs this
DEFAULT_DATABASES = [
    "sqlite:////tmp/bench_hooks.sqlite3",
    "postgres://postgres@127.0.0.1:54329/bench_hooks",
]
SECRET = "bench-webhook-secret"
PORTAL_PATH = "/webhooks/mobtexting/"
BASELINE_PATH = "/webhooks/baseline/"
BARE_PATH = "/webhooks/bare/"
TARGETS = ("portal", "bare", "baseline")
# The door's throughput as a share of the bare app's, with the deliveries worker running.
TARGET_RATIO = {"postgresql": 0.8, "sqlite": 0.6}
TARGET_P99_MS, TARGET_P99_VS_BASELINE = 10.0, 1.5
TARGET_VISIBLE_P99_MS = 1000.0
BRIDGES = ["918068287602", "914066554433", "912261234567"]
OUTCOMES = [("ANSWER", 50), ("NOANSWER", 20), ("BUSY", 12), ("CANCEL", 8), ("CONGESTION", 10)]


# --- Deliveries -------------------------------------------------------------------------------


class Deliveries:
    """Distinct, realistic OBD pushes; every other one carries the mid of a call in flight (while
    `calls` lasts; the others have a new mid, a random number and a known bridge)."""

    def __init__(self, calls: list[tuple[str, str, str]], seed: int = 7) -> None:
        self.calls = calls  # (mid, to, bridge) of pre-created calls, each used once
        self.rng = random.Random(seed)
        self.sent = self.matched = 0

    def next(self) -> bytes:
        rng = self.rng
        matched = self.sent % 2 == 0 and self.matched < len(self.calls)
        if matched:
            mid, to, bridge = self.calls[self.matched]
            self.matched += 1
        else:
            mid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            to, bridge = f"91{rng.choice('6789')}{rng.randrange(10**9):09d}", rng.choice(BRIDGES)
        self.sent += 1
        status = rng.choices([s for s, _ in OUTCOMES], [w for _, w in OUTCOMES])[0]
        start = datetime.now() - timedelta(seconds=rng.randrange(30, 300))
        duration = rng.randrange(5, 180) if status == "ANSWER" else 0
        push = {
            "bridge": int(bridge),  # numbers unquoted, as in the documented example
            "from": int(bridge),
            "to": int(to),
            "source": "OBD",
            "mid": mid,
            "flow_id": 24,
            "start_at": start.strftime("%Y-%m-%d %H:%M:%S"),
            "end_at": (start + timedelta(seconds=duration)).strftime("%Y-%m-%d %H:%M:%S"),
            "duration": str(duration),
            "status": status,
            "recording_url": f"https://recordings.example.com/{mid}.mp3" if duration else "",
        }
        return json.dumps(push).encode()


# --- Load client ------------------------------------------------------------------------------


@dataclass
class Run:
    """What one target answered during one phase."""

    phase: str
    target: str
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    stored: int = 0
    matched_sent: int = 0
    matched_stored: int | None = None
    cpu_app_s: float = 0.0  # user+system time of the gunicorn workers (with SQLite, the DB too)
    cpu_db_s: float = 0.0  # PostgreSQL backends serving this database
    # Stored to applied (the deliveries worker's commit), per delivery: when it shows on pages.
    visible_ms: list[float] = field(default_factory=list)
    load: float = 0.0  # the 1-minute load average at the end of the run (the highest of rounds)

    def add(self, other: Run) -> None:
        """Fold another round of the same phase and target into this one."""
        self.sent += other.sent
        for status, n in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n
        self.errors += other.errors
        self.latencies_ms += other.latencies_ms
        self.elapsed_s += other.elapsed_s
        self.stored += other.stored
        self.cpu_app_s += other.cpu_app_s
        self.cpu_db_s += other.cpu_db_s
        self.visible_ms += other.visible_ms
        self.load = max(self.load, other.load)
        self.matched_sent += other.matched_sent
        if other.matched_stored is not None:
            self.matched_stored = (self.matched_stored or 0) + other.matched_stored

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0

    def pct(self, q: float, values: list[float] | None = None) -> float:
        values = self.latencies_ms if values is None else values
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def as_dict(self) -> dict:
        return {
            "phase": self.phase,
            "target": self.target,
            "sent": self.sent,
            "ok": self.ok,
            "non_2xx": self.non_2xx,
            "statuses": self.statuses,
            "errors": self.errors,
            "stored": self.stored,
            "lost": self.sent - self.stored,
            "matched_sent": self.matched_sent,
            "matched_stored": self.matched_stored,
            "elapsed_s": self.elapsed_s,
            "rate": self.rate,
            "p50_ms": self.pct(0.5),
            "p90_ms": self.pct(0.9),
            "p99_ms": self.pct(0.99),
            "max_ms": max(self.latencies_ms, default=float("nan")),
            "mean_ms": statistics.fmean(self.latencies_ms) if self.latencies_ms else float("nan"),
            "cpu_app_ms": self.cpu_app_s * 1000 / self.ok if self.ok else float("nan"),
            "cpu_db_ms": self.cpu_db_s * 1000 / self.ok if self.ok else float("nan"),
            "visible_p50_ms": self.pct(0.5, self.visible_ms),
            "visible_p99_ms": self.pct(0.99, self.visible_ms),
            "load": self.load,
        }


def http_request(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {SECRET}\r\nContent-Type: application/json\r\n"
        f"User-Agent: obd-bench\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def post(port: int, request: bytes, timeout: float) -> int:
    """Send one request on a new connection; the HTTP status, or -1 when the exchange failed."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            await reader.read()  # Connection: close, so the body ends at EOF
        finally:
            writer.close()
    parts = status_line.split()
    return int(parts[1]) if len(parts) > 1 else -1


async def paced(run: Run, port: int, path: str, gen: Deliveries, rate: float, duration: float):
    """Open loop: request i leaves at start + i/rate; its latency counts from that moment."""
    loop = asyncio.get_running_loop()
    total = int(rate * duration)
    matched_before = gen.matched
    requests = [http_request(port, path, gen.next()) for _ in range(total)]  # built beforehand
    run.matched_sent = gen.matched - matched_before
    limit = asyncio.Semaphore(512)  # keep the open files bounded if the server stalls

    async def one(request: bytes, due: float) -> None:
        async with limit:
            try:
                status = await post(port, request, timeout=30)
            except (OSError, TimeoutError):
                status = -1
        run.latencies_ms.append((loop.time() - due) * 1000)
        if status < 0:
            run.errors += 1
        else:
            run.statuses[status] = run.statuses.get(status, 0) + 1

    start = loop.time() + 0.05
    tasks = []
    for i, request in enumerate(requests):
        due = start + i / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, due)))
        run.sent += 1
    await asyncio.gather(*tasks)
    run.elapsed_s = loop.time() - start


async def flat_out(run: Run, port: int, path: str, gen: Deliveries, clients: int, duration: float):
    """Closed loop: `clients` senders, each sending its next delivery when the last is answered."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + duration

    async def client() -> None:
        while loop.time() < end:
            request = http_request(port, path, gen.next())
            run.sent += 1
            began = loop.time()
            try:
                status = await post(port, request, timeout=30)
            except (OSError, TimeoutError):
                status = -1
            run.latencies_ms.append((loop.time() - began) * 1000)
            if status < 0:
                run.errors += 1
            else:
                run.statuses[status] = run.statuses.get(status, 0) + 1

    matched_before = gen.matched
    await asyncio.gather(*(client() for _ in range(clients)))
    run.elapsed_s = loop.time() - start
    run.matched_sent = gen.matched - matched_before


# --- Servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


class Gunicorn:
    """One gunicorn on a free loopback port; stopped (SIGTERM to its master) on exit."""

    def __init__(
        self, name: str, app: str, settings: str, env: dict, args, log_dir: Path, code: Path = REPO
    ):
        self.name, self.port, self.code = name, free_port(), code
        self.log = log_dir / f"gunicorn-{name}.log"
        command = [str(GUNICORN), app, "--bind", f"127.0.0.1:{self.port}"]
        command += ["--workers", str(args.workers), "--worker-class", args.worker_class]
        command += ["--threads", str(args.threads), "--backlog", "2048", "--timeout", "60"]
        command += ["--no-control-socket"]  # two servers here, maybe others elsewhere
        self.command = command
        self.env = env | {"DJANGO_SETTINGS_MODULE": settings, "PYTHONPATH": str(code)}
        self.process: subprocess.Popen | None = None
        self.companions: list[subprocess.Popen] = []  # the deliveries workers, for the portal

    def __enter__(self) -> Gunicorn:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.code, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn {self.name} exited; see {self.log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn {self.name} did not start; see {self.log}")

    def cpu(self) -> dict[int, float]:
        """CPU seconds of each worker (and of the deliveries workers: their work is the portal's)."""
        pids = children(self.process.pid) + [p.pid for p in self.companions]
        return {pid: cpu_seconds(pid) for pid in pids}

    def __exit__(self, *exc) -> None:
        for companion in self.companions:
            companion.send_signal(signal.SIGTERM)
            companion.wait(timeout=20)
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- Database (child process, Django set up) --------------------------------------------------


def recreate_database(url: str) -> None:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]  # sqlite:////tmp/x → /tmp/x
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(path + suffix).unlink(missing_ok=True)
        return
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def prepare(calls: int, seed: int | None = None) -> list[tuple[str, str, str]]:
    """Migrate, make the baselines' tables, and put `calls` calls in flight to be matched."""
    from django.core.management import call_command
    from django.utils import timezone

    from bench.bare.app import create_table as create_bare_table
    from bench.baseline.views import create_table
    from calls.models import Bridge, CallLog, IvrFlow

    call_command("migrate", verbosity=0)
    create_table()
    create_bare_table()
    bridges = [Bridge.objects.get_or_create(number=n)[0] for n in BRIDGES]
    flow, _ = IvrFlow.objects.get_or_create(
        flow_id="24", defaults={"name": "Login OTP", "template": "Hello {Name}, otp {otp}"}
    )
    rng = random.Random(seed)  # fresh ids every time unless a seed is given
    rows, now = [], timezone.now()
    for _ in range(calls):
        mid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        bridge = rng.choice(bridges)
        to = f"91{rng.choice('6789')}{rng.randrange(10**9):09d}"
        rows.append(
            CallLog(
                bridge=bridge,
                to=to,
                flow=flow,
                variables={"Name": "Asha", "otp": "******"},
                request_payload={"bridge": bridge.number, "to": to, "flow_id": "24"},
                status=CallLog.Status.QUEUED,
                provider_status="queued",
                provider_id=mid,
                provider_key=mid,
                http_status=200,
                submitted_at=now,
                created_at=now - timedelta(seconds=rng.randrange(60, 600)),
            )
        )
    CallLog.objects.bulk_create(rows, batch_size=2000)
    return [(c.provider_id, c.to, c.bridge.number) for c in rows]


def stored_counts() -> dict:
    from django.db import connection

    from bench.bare.app import TABLE as BARE_TABLE
    from bench.baseline.views import TABLE
    from calls.models import CallEvent

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE}")
        baseline = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {BARE_TABLE}")
        bare = cursor.fetchone()[0]
    counts = {
        "portal": CallEvent.objects.count(),
        "portal_last": CallEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0,
        "portal_matched": CallEvent.objects.exclude(call=None).count(),
        "baseline": baseline,
        "bare": bare,
        "db_cpu": {},
    }
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            counts["db_cpu"] = {pid: cpu_seconds(pid) for (pid,) in cursor.fetchall()}
    connection.close()  # hold nothing open (no SQLite read snapshot) while the servers write
    return counts


def drain(after_id: int, timeout: float = 30, in_process: bool = False) -> None:
    """Wait until the run's deliveries are applied; with no deliveries worker (--appliers 0, the
    door measured alone) apply them here, outside the servers' measured CPU."""
    from django.db import connection

    from calls.models import CallEvent
    from calls.models.events import apply_waiting

    while in_process and apply_waiting():
        pass
    deadline = time.monotonic() + timeout
    while CallEvent.objects.filter(pk__gt=after_id, applied_at=None).exists():
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    connection.close()


def visible_ms(after_id: int) -> list[float]:
    """For each delivery of the run: from stored (received_at) to applied (applied_at)."""
    from django.db import connection

    from calls.models import CallEvent

    pairs = CallEvent.objects.filter(pk__gt=after_id).values_list("received_at", "applied_at")
    times = [(a - r).total_seconds() * 1000 if a else float("inf") for r, a in pairs]
    connection.close()
    return times


def measure(kind: str, label: str, name: str, server: Gunicorn, path: str, gen, args) -> Run:
    """One phase against one target: rows stored and CPU used are read before and after."""
    before, cpu_before = stored_counts(), server.cpu()
    run = Run(label, name)
    if kind == "paced":
        asyncio.run(paced(run, server.port, path, gen, args.rate, args.duration))
    else:
        asyncio.run(flat_out(run, server.port, path, gen, args.clients, args.duration))
    if name == "portal":
        cpu_door = server.cpu()
        drain(before["portal_last"], in_process=not server.companions)
    cpu_after = cpu_door if name == "portal" and not server.companions else server.cpu()
    time.sleep(0.5)
    after = stored_counts()
    run.cpu_app_s = sum(t - cpu_before.get(pid, 0.0) for pid, t in cpu_after.items())
    # Backends that quit meanwhile are missed: the servers keep their connections (see child).
    run.cpu_db_s = sum(t - before["db_cpu"].get(pid, 0.0) for pid, t in after["db_cpu"].items())
    run.stored = after[name] - before[name]
    if name == "portal":
        run.matched_stored = after["portal_matched"] - before["portal_matched"]
        run.visible_ms = visible_ms(before["portal_last"])
    else:
        run.matched_sent = 0
    return run


def child(args: argparse.Namespace) -> None:
    url = args.database_url
    recreate_database(url)
    env = os.environ | {
        "DATABASE_URL": url,
        "OBD_WEBHOOK_SECRET": SECRET,
        "MOBTEXTING_API_TOKEN": "",
        "LOG_LEVEL": args.log_level,
        "PYTHONPATH": str(REPO),
        # Keep each worker's PostgreSQL connection for the whole run (default: 60 s), so the CPU
        # of its backend process can be read from /proc before and after each phase.
        "DB_CONN_MAX_AGE": "3600",
    }
    os.environ.update(env | {"DJANGO_SETTINGS_MODULE": "obdportal.settings"})
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.db import connection

    vendor = connection.vendor
    load_before = os.getloadavg()[0]
    # Matched deliveries: half of the paced ones plus half of a generous max-throughput run.
    need = int((args.rate + 2000) * args.duration / 2 * args.rounds + args.warmup)
    calls = prepare(need)
    connection.close()
    # The portal's deliveries use up the calls; the baseline's are alike but match nothing.
    gens = {
        "portal": Deliveries(calls),
        "baseline": Deliveries([], seed=8),
        "bare": Deliveries([], seed=9),
    }
    log_dir = Path(args.log_dir)
    code = Path(args.code).resolve()  # the portal and its deliveries worker run from here
    portal = Gunicorn("portal", "obdportal.wsgi", "obdportal.settings", env, args, log_dir, code)
    targets = {
        "portal": portal,
        "baseline": Gunicorn(
            "baseline", "bench.baseline.wsgi", "bench.baseline.settings", env, args, log_dir
        ),
        "bare": Gunicorn("bare", "bench.bare.wsgi", "bench.bare.settings", env, args, log_dir),
    }
    paths = {"portal": PORTAL_PATH, "baseline": BASELINE_PATH, "bare": BARE_PATH}
    # The deliveries workers apply what the portal's door stores, as in production.
    targets["portal"].companions = [
        subprocess.Popen(
            [sys.executable, "manage.py", "apply_deliveries"],
            cwd=code,
            env=portal.env,
            stdout=(log_dir / f"applier-{n}.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        for n in range(args.appliers)
    ]
    with targets["portal"], targets["baseline"], targets["bare"]:
        for name, server in targets.items():  # warm every worker: imports, DB connections
            warm = Run("warm-up", name)
            asyncio.run(paced(warm, server.port, paths[name], gens[name], 50, args.warmup / 50))
            bad = {s: n for s, n in warm.statuses.items() if not 200 <= s < 300}
            if bad or warm.errors:
                raise RuntimeError(f"{name} warm-up answered {warm.statuses}, see {server.log}")
        phases = [("paced", f"paced {args.rate:g}/s"), ("max", f"max c={args.clients}")]
        runs: dict[tuple[str, str], Run] = {}
        for kind, label in phases:
            for round_ in range(args.rounds):  # side by side, the order swapped every round
                order = TARGETS if round_ % 2 == 0 else TARGETS[::-1]
                for name in order:
                    run = measure(kind, label, name, targets[name], paths[name], gens[name], args)
                    run.load = os.getloadavg()[0]
                    runs.setdefault((label, name), Run(label, name)).add(run)
                    print(
                        f"  {vendor:<10} {label:<14} {name:<8} {run.rate:7.1f} req/s"
                        f"  load {run.load:4.1f}"
                        f"  p50 {run.pct(0.5):6.1f} ms  p99 {run.pct(0.99):7.1f} ms"
                        f"  sent {run.sent} stored {run.stored}",
                        file=sys.stderr,
                        flush=True,
                    )
    result = {
        "vendor": vendor,
        "database_url": url,
        "code": str(code),
        "workers": args.workers,
        "worker_class": args.worker_class,
        "threads": args.threads,
        "rounds": args.rounds,
        "appliers": args.appliers,
        "load": [load_before, os.getloadavg()[0]],
        "runs": [r.as_dict() for r in runs.values()],
    }
    Path(args.result_file).write_text(json.dumps(result))


# --- Orchestration (parent) -------------------------------------------------------------------


def _cpu(r: dict) -> float:
    return r["cpu_app_ms"] + r["cpu_db_ms"]


def _cpu_text(r: dict, pg: bool) -> str:
    db = f" + {r['cpu_db_ms']:.2f} PostgreSQL" if pg else ""
    return f"{_cpu(r):.2f} ms ({r['cpu_app_ms']:.2f} gunicorn{db})"


def report(results: list[dict], args: argparse.Namespace) -> bool:
    ok_all = True
    for result in results:
        print(
            f"\nWebhook on {result['vendor']}, the portal from {result['code']} "
            f"({result['workers']} gunicorn "
            f"{result['worker_class']} workers x {result['threads']} threads, "
            f"{os.cpu_count()} cores shared with the client; {result['rounds']} round(s) of "
            f"{args.duration:g} s per phase and target; {result['appliers']} deliveries "
            f"worker(s); load average {result['load'][0]:.1f} before, "
            f"{result['load'][1]:.1f} after)"
        )
        head = (
            f"{'phase':<14} {'target':<8} {'sent':>6} {'2xx':>6} {'non-2xx':>7} {'errors':>6}"
            f" {'stored':>6} {'lost':>4} {'matched':>11} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
            f" {'max ms':>7} {'CPU ms/req':>10} {'load':>5}"
        )
        print(head)
        print("-" * len(head))
        for r in result["runs"]:
            matched = (
                f"{r['matched_stored']}/{r['matched_sent']}"
                if r["matched_stored"] is not None
                else "-"
            )
            print(
                f"{r['phase']:<14} {r['target']:<8} {r['sent']:>6} {r['ok']:>6} {r['non_2xx']:>7}"
                f" {r['errors']:>6} {r['stored']:>6} {r['lost']:>4} {matched:>11}"
                f" {r['rate']:>7.1f} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['max_ms']:>7.1f}"
                f" {_cpu(r):>10.2f} {r['load']:>5.1f}"
            )
        by = {(r["phase"].split()[0], r["target"]): r for r in result["runs"]}
        p_portal, p_bare = by[("paced", "portal")], by[("paced", "bare")]
        m_portal = by[("max", "portal")]
        ratios = {
            name: m_portal["rate"] / by[("max", name)]["rate"]
            if by[("max", name)]["rate"]
            else float("nan")
            for name in ("bare", "baseline")
        }
        print(
            f"portal/bare: max throughput {ratios['bare']:.2f}; portal/baseline (one INSERT "
            f"behind the browser middleware) {ratios['baseline']:.2f}; paced p99 portal "
            f"{p_portal['p99_ms']:.1f} ms, bare {p_bare['p99_ms']:.1f} ms "
            f"(x{p_portal['p99_ms'] / p_bare['p99_ms']:.2f})"
        )
        pg = result["vendor"] == "postgresql"
        print(
            f"delivery to visible (stored -> applied): paced p50 {p_portal['visible_p50_ms']:.0f}"
            f" ms, p99 {p_portal['visible_p99_ms']:.0f} ms; at max p50"
            f" {m_portal['visible_p50_ms']:.0f} ms, p99 {m_portal['visible_p99_ms']:.0f} ms"
        )
        m_bare = by[("max", "bare")]
        print(
            f"server CPU per delivery at max: portal {_cpu_text(m_portal, pg)}, bare "
            f"{_cpu_text(m_bare, pg)}; bare/portal {_cpu(m_bare) / _cpu(m_portal):.2f} (the "
            "throughput ratio if the servers had the CPU to themselves)"
        )
        lost = sum(r["lost"] for r in result["runs"])
        unmatched = sum(
            r["matched_sent"] - r["matched_stored"]
            for r in result["runs"]
            if r["matched_stored"] is not None
        )
        target = TARGET_RATIO[result["vendor"]]
        checks = [
            (f"portal/bare throughput >= {target}", ratios["bare"] >= target),
            (
                f"portal p99 < {TARGET_P99_MS:.0f} ms at {args.rate:g}/s",
                p_portal["p99_ms"] < TARGET_P99_MS,
            ),
            (
                "zero lost (sent == stored), all 2xx",
                lost == 0 and not any(r["non_2xx"] or r["errors"] for r in result["runs"]),
            ),
            (
                f"portal p99 <= {TARGET_P99_VS_BASELINE:g}x the bare app's at {args.rate:g}/s",
                p_portal["p99_ms"] <= TARGET_P99_VS_BASELINE * p_bare["p99_ms"],
            ),
            ("every matched delivery found its call", unmatched == 0),
            (
                f"delivery to visible p99 < {TARGET_VISIBLE_P99_MS:.0f} ms at {args.rate:g}/s",
                p_portal["visible_p99_ms"] < TARGET_VISIBLE_P99_MS,
            ),
        ]
        for text, passed in checks:
            print(f"  [{'ok' if passed else 'MISSED'}] {text}")
            ok_all &= passed
    return ok_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        action="append",
        help="a database to recreate and load (repeatable); default: "
        + " and ".join(DEFAULT_DATABASES),
    )
    parser.add_argument("--rate", type=float, default=200, help="paced requests per second")
    parser.add_argument("--duration", type=float, default=10, help="seconds per phase and target")
    parser.add_argument("--clients", type=int, default=16, help="concurrent senders at max")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat each phase, alternating which target goes first",
    )
    parser.add_argument(
        "--appliers", type=int, default=1, help="deliveries workers beside the portal"
    )
    parser.add_argument("--warmup", type=int, default=100, help="deliveries before measuring")
    parser.add_argument("--log-level", default="INFO", help="the servers' LOG_LEVEL")
    parser.add_argument("--log-dir", default=None, help="gunicorn logs (default: a temp dir)")
    parser.add_argument(
        "--code",
        action="append",
        help="a checkout whose portal and deliveries worker are measured (repeatable: each is "
        "run in turn against the same bare app, e.g. before and after; default: this one)",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.database_url, args.code = args.database_url[0], args.code[0]
        child(args)
        return
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="bench-hooks-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    results = []
    runs = [(u, c) for u in args.database_url or DEFAULT_DATABASES for c in args.code or [REPO]]
    for url, code in runs:
        print(f"== {url}, {code} (gunicorn logs in {log_dir})", file=sys.stderr, flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [sys.executable, __file__, "--child", "--database-url", url]
            command += ["--code", str(code)]
            command += ["--result-file", out.name, "--log-dir", str(log_dir)]
            names = (
                "rate",
                "duration",
                "clients",
                "workers",
                "worker_class",
                "threads",
                "rounds",
                "appliers",
            )
            for name in names:
                command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
            command += ["--warmup", str(args.warmup), "--log-level", args.log_level]
            subprocess.run(command, check=True, cwd=REPO)
            results.append(json.loads(Path(out.name).read_text()))
    passed = report(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
