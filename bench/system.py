"""The whole system measured as it runs in production: one PostgreSQL, gunicorn with two worker
processes, three background workers, a provider stand-in, a campaign and agents at once.

For each `--code DIR` (a checkout of the portal; default this repository), one after another:

1. recreates the PostgreSQL database (`--db`, default obd_h3 on the server at /tmp/pg:54329),
   migrates it and queues the periodic tasks (the Procfile's release step), and makes a
   supervisor, an agent, a bridge and a flow (`Hello {Name}, your otp for login is {otp}`);
2. starts, from DIR with this repository's .venv: `gunicorn obdportal.wsgi --workers 2` (DIR's
   gunicorn.conf.py, access log on) and three workers: `db_worker --queue-name campaigns`,
   `db_worker --queue-name default`, and `apply_deliveries` when DIR has that command (the new
   path: the webhook stores, the worker applies), else a second default db_worker (today's path:
   the webhook request applies the outcome itself); with the engine (calls/engine/), `worker`
   for both queues and `engine` (deliveries and the periodic jobs) instead;
3. points the portal at a provider stand-in in this process (bench/standin.py): it answers
   `outgoing/send` and posts realistic webhooks back (attempts, duplicates, out of order,
   unknown ids, some before the send is answered) and knows the outcome each call must end with;
4. uploads a `--rows` CSV through the campaign page (as a supervisor, CSRF and all) at
   `--pace` calls/s and starts it; meanwhile an agent places single calls through the call form
   at `--form-rate`/s until the campaign is sent (at most `--form-calls`, so that runs slowed
   by the machine's other work do the same work); then waits for the deliveries to drain;
5. checks against the stand-in's records and the database: every call sent once (sent twice
   must be 0), every outcome applied (lost must be 0), every 2xx delivery stored.

What is measured:

- pace held: campaign sends per second at the stand-in, first to last send; and the whole
  seconds in between with fewer than 90 % of the pace;
- webhook response: the stand-in's POST, connect to last byte (a new connection each, like
  the provider);
- delivery to visible: from the start of the stand-in's POST of the delivery that decides a
  call (its last attempt, first copy) to the first time a reader of the database sees that
  outcome (the call's status and the attempt's start time): a watcher polls the calls waiting
  for one every `--poll` s (50 ms), so figures are high by up to that. The same for both paths.
  For the new path also `applied_at - received_at` of the stored deliveries;
- CPU per call: user + system time (from /proc) of gunicorn, the three workers and the
  PostgreSQL backends of the database (the bench's own connections left out), from the
  campaign's start to the end of the drain, divided by the calls sent. The stand-in and the
  bench itself run in this process and are not counted (their CPU is shown apart).

The machine has 2 cores and other people's work: the load average is printed with the table.
The settings are obdportal.settings with DEBUG off (obdportal.production would also need TLS
and collected static files; neither changes what is measured here). Logs go to --log-dir.

- pickup: for the calls placed through the form, from the row stored (`created_at`) to its POST
  begun by a worker (`submitted_at`): how long a placed call waits for a worker.

Run from the repository root (not part of the test suite):

    .venv/bin/python bench/system.py --quick                       # 1,000 rows, this checkout
    .venv/bin/python bench/system.py --before e06eb55 --rounds 2   # before/after, alternately
    .venv/bin/python bench/system.py --code /tmp/obd_old --code .  # any checkouts, in order
    .venv/bin/python bench/system.py --code /tmp/obd_old --json /tmp/old.json

`--before COMMIT` exports that commit (`git archive`) to a temporary directory and runs it and
this working tree alternately, `--rounds` times each, in one run on the same machine, so that
the load others put on it falls on both alike.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from standin import Expected, StandIn

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv this bench runs in (gunicorn beside python)
PG = {"host": "/tmp/pg", "port": 54329, "user": "postgres"}
SECRET = "bench-system-webhook-secret"
TOKEN = "bench-system-api-token"
BRIDGE = "918068287602"
PASSWORD = "bench-" + uuid.uuid4().hex
CAMPAIGN_PREFIX, FORM_PREFIX = "9198", "9197"  # every call its own number (9196: unknown ids)
TARGET_P99_S = 1.0

SETUP = f"""
import json
from django.contrib.auth.models import Group, User
from calls.models import Bridge, IvrFlow
bridge = Bridge.objects.create(number="{BRIDGE}", label="bench")
flow = IvrFlow.objects.create(
    flow_id="24", name="Login OTP", template="Hello {{Name}}, your otp for login is {{otp}}"
)
for name, group in (("bench-supervisor", "Supervisors"), ("bench-agent", "Agents")):
    User.objects.create_user(name, password="{PASSWORD}").groups.add(Group.objects.get(name=group))
print(json.dumps({{"bridge": bridge.pk, "flow": flow.pk}}))
"""


# --- Processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def family(pid: int) -> list[int]:
    """A process and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            todo += [
                int(p) for p in Path(f"/proc/{current}/task/{current}/children").read_text().split()
            ]
    return found


class Portal:
    """The portal's processes for one checkout, each logging to its own file."""

    def __init__(
        self, code: Path, env: dict[str, str], log_dir: Path, new_path: bool, port: int
    ) -> None:
        self.code, self.env, self.log_dir = code, env, log_dir
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        python = str(BIN / "python")
        # A checkout with the engine: its workers and its engine (deliveries and periodic jobs).
        engine = (code / "calls" / "management" / "commands" / "engine.py").exists()
        if engine:
            third = ["engine"]
        elif new_path:
            third = ["apply_deliveries"]
        else:
            third = ["db_worker", "--no-reload", "--queue-name", "default"]
        worker = [python, "manage.py", *(["worker"] if engine else ["db_worker", "--no-reload"])]
        worker.append("--queue-name")
        self.commands = {
            # The app named last: someone's `pkill -f "gunicorn obdportal.wsgi"` (a test's
            # clean-up) must not take this server down in the middle of a run.
            "web": [
                *(str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", "2"),
                *("--no-control-socket", "--access-logfile", "-", "obdportal.wsgi:application"),
            ],
            "campaigns": [*worker, "campaigns"],
            "default": [*worker, "default"],
            "third": [python, "manage.py", *third],
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "python"), "manage.py", *args],
            cwd=self.code,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def start(self) -> None:
        for name, command in self.commands.items():
            with (self.log_dir / f"{name}.log").open("ab") as log:
                self.processes[name] = subprocess.Popen(
                    command, cwd=self.code, env=self.env, stdout=log, stderr=subprocess.STDOUT
                )
        deadline = time.monotonic() + 60
        while True:
            self.check_alive()
            try:
                requests.get(f"{self.url}/healthz", timeout=2)
                return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start; see {self.log_dir}") from None
                time.sleep(0.2)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited (code {process.returncode}); see its log")

    def pids(self) -> dict[str, list[int]]:
        """Each role's processes now (gunicorn: master and workers; each worker apart)."""
        return {name: family(process.pid) for name, process in self.processes.items()}

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def connect(db: str, name: str) -> psycopg.Connection:
    return psycopg.connect(**PG, dbname=db, application_name=name, autocommit=True)


def recreate_database(db: str) -> None:
    with connect("postgres", "bench-setup") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')


# --- Observers -------------------------------------------------------------------------------


class Watcher(threading.Thread):
    """Polls the database for the calls whose deciding delivery has been posted, and notes how
    long after that POST began their outcome became visible to a reader."""

    def __init__(self, db: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.db, self.interval = db, interval
        self.lock = threading.Lock()
        self.pending: dict[str, tuple[float, str, int]] = {}
        self.latencies: list[float] = []
        self.most_pending = 0
        self.stopped = threading.Event()

    def watch(self, to: str, expected: Expected) -> None:
        assert expected.deciding_posted is not None
        with self.lock:
            moment = int(expected.started_at.timestamp())
            self.pending[to] = (expected.deciding_posted, expected.status, moment)
            self.most_pending = max(self.most_pending, len(self.pending))

    def waiting(self) -> int:
        with self.lock:
            return len(self.pending)

    def run(self) -> None:
        with connect(self.db, "bench-watcher") as conn:
            while not self.stopped.is_set():
                with self.lock:
                    numbers = list(self.pending)
                began = time.monotonic()  # every number above was posted before this instant
                if numbers:
                    rows = conn.execute(
                        'SELECT "to", status, started_at FROM calls_calllog WHERE "to" = ANY(%s)',
                        [numbers],
                    ).fetchall()
                    with self.lock:
                        for to, status, started_at in rows:
                            posted, want, moment = self.pending.get(to, (0.0, "", 0))
                            if started_at and status == want and started_at.timestamp() == moment:
                                self.latencies.append(began - posted)
                                del self.pending[to]
                self.stopped.wait(max(0.0, self.interval - (time.monotonic() - began)))


class CpuMeter(threading.Thread):
    """CPU seconds used by the portal's processes and the database's backends since `start`,
    read every second so that processes which come and go are counted too."""

    def __init__(self, db: str, portal: Portal) -> None:
        super().__init__(daemon=True)
        self.db, self.portal = db, portal
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}
        self.stopped = threading.Event()
        self.conn = connect(db, "bench-cpu")
        self.sample(baseline=True)

    def sample(self, baseline: bool = False) -> None:
        groups = self.portal.pids()
        groups["postgres"] = [
            pid
            for (pid,) in self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name NOT LIKE 'bench-%%' AND pid <> pg_backend_pid()"
            ).fetchall()
        ]
        for group, pids in groups.items():
            for pid in pids:
                seconds = cpu_seconds(pid)
                if seconds:
                    self.first.setdefault((group, pid), seconds if baseline else 0.0)
                    self.last[(group, pid)] = seconds

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            self.sample()

    def stop(self) -> dict[str, float]:
        self.stopped.set()
        self.join()
        self.sample()
        self.conn.close()
        used: Counter[str] = Counter()
        for key, last in self.last.items():
            used[key[0]] += last - self.first[key]
        return dict(used)


# --- The people ------------------------------------------------------------------------------


class Browser:
    """A person at the portal: a session, forms posted with their CSRF token."""

    def __init__(self, url: str, username: str) -> None:
        self.url = url
        self.session = requests.Session()
        page = self.session.get(f"{url}/accounts/login/", timeout=30)
        self.post_form(
            "/accounts/login/", page, {"username": username, "password": PASSWORD}, expect=302
        )

    def token(self, page: requests.Response) -> str:
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if not found:
            raise RuntimeError(f"no CSRF token on {page.url} (HTTP {page.status_code})")
        return found.group(1)

    def post_form(
        self,
        path: str,
        page: requests.Response,
        data: dict[str, str],
        files: dict[str, tuple[str, bytes, str]] | None = None,
        expect: int = 302,
    ) -> requests.Response:
        data = data | {"csrfmiddlewaretoken": self.token(page)}
        answer = self.session.post(
            f"{self.url}{path}", data=data, files=files, allow_redirects=False, timeout=120
        )
        if answer.status_code != expect:
            raise RuntimeError(f"POST {path}: HTTP {answer.status_code}\n{answer.text[:2000]}")
        return answer

    def get(self, path: str) -> requests.Response:
        page = self.session.get(f"{self.url}{path}", timeout=30)
        page.raise_for_status()
        return page


def campaign_csv(rows: int) -> bytes:
    lines = ["number,Name,otp"]
    lines += [f"+{CAMPAIGN_PREFIX}{i:08d},Customer {i},{100000 + i % 900000}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


class Agent(threading.Thread):
    """Places single calls through the call form, one every 1/rate s, until stopped."""

    def __init__(self, browser: Browser, ids: dict[str, int], rate: float, most: int) -> None:
        super().__init__(daemon=True)
        self.browser, self.ids, self.rate, self.most = browser, ids, rate, most
        self.placed = 0
        self.refused: list[str] = []
        self.seconds: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        page = self.browser.get("/calls/new/")
        due = time.monotonic()
        while not self.stopped.is_set() and self.placed < self.most:
            data = {
                "bridge": str(self.ids["bridge"]),
                "to": f"+{FORM_PREFIX}{self.placed:08d}",
                "flow": str(self.ids["flow"]),
                "audio": "",
                "audio_url": "",
                "name": "",
                "interval": "5",
                "webhook_id": "",
                "idempotency_key": str(uuid.uuid4()),
                "variables[Name]": "Asha",
                "variables[otp]": f"{482913 + self.placed}",
            }
            began = time.monotonic()
            try:
                answer = self.browser.post_form("/calls/new/", page, data)
                self.seconds.append(time.monotonic() - began)
                self.browser.get(answer.headers["Location"])  # the call's page, as a browser
            except (RuntimeError, requests.RequestException) as exc:
                self.refused.append(str(exc)[:300])
            self.placed += 1
            due += 1 / self.rate
            self.stopped.wait(max(0.0, due - time.monotonic()))


# --- One run ---------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(code: Path, args: argparse.Namespace, log_dir: Path, label: str) -> dict[str, object]:
    new_path = (code / "calls" / "management" / "commands" / "apply_deliveries.py").exists()
    label = label or ("new" if new_path else "today's")
    print(f"== {label} code path: {code} (logs in {log_dir})", file=sys.stderr, flush=True)
    recreate_database(args.db)
    env = os.environ | {
        "DATABASE_URL": f"postgres://postgres@/{args.db}?host={PG['host']}&port={PG['port']}",
        "DJANGO_SETTINGS_MODULE": "obdportal.settings",
        "PYTHONPATH": str(code),  # before the venv's editable install of this repository
        "DEBUG": "false",
        # Connections kept for the whole run, so their backends' CPU can be read from /proc.
        "DB_CONN_MAX_AGE": "3600",
        "MOBTEXTING_API_TOKEN": TOKEN,
        "OBD_WEBHOOK_SECRET": SECRET,
        "LOG_LEVEL": "INFO",
        # The flow is a login OTP (transactional) and the bench runs at any hour: the TRAI
        # hours for promotional calls must not hold the campaign back.
        "OBD_TRAI_PRESET": "false",
    }
    watcher = Watcher(args.db, args.poll)
    portal = None
    standin = None
    try:
        # The stand-in needs the portal's webhook URL, the portal the stand-in's API URL.
        port = free_port()
        standin = StandIn(
            f"http://127.0.0.1:{port}/webhooks/mobtexting/",
            SECRET,
            TOKEN,
            on_deciding=watcher.watch,
        )
        env["MOBTEXTING_API_URL"] = standin.url
        portal = Portal(code, env, log_dir, new_path, port)
        portal.manage("migrate", "--no-input", "-v", "0")
        portal.manage("start_periodic_tasks")
        ids = json.loads(portal.manage("shell", "-v", "0", "-c", SETUP).strip().splitlines()[-1])
        portal.start()
        watcher.start()
        supervisor = Browser(portal.url, "bench-supervisor")
        agent = Agent(Browser(portal.url, "bench-agent"), ids, args.form_rate, args.form_calls)
        page = supervisor.get("/campaigns/new/")
        began = time.monotonic()
        created = supervisor.post_form(
            "/campaigns/new/",
            page,
            {
                "name": "System bench",
                "bridge": str(ids["bridge"]),
                "flow": str(ids["flow"]),
                "audio": "",
                "interval": "5",
                "webhook_id": "",
                "pace": f"{args.pace:g}",
                "window_start": "",
                "window_end": "",
                "window_timezone": "Asia/Kolkata",
            },
            files={"csv_file": ("numbers.csv", campaign_csv(args.rows), "text/csv")},
        )
        upload_s = time.monotonic() - began
        campaign_path = created.headers["Location"]
        campaign_id = int(re.findall(r"\d+", campaign_path)[-1])
        rows = imported(args.db, campaign_id, portal)
        load_before = os.getloadavg()
        cpu = CpuMeter(args.db, portal)
        cpu.start()
        own_cpu = time.process_time()
        confirm = supervisor.get(f"/campaigns/{campaign_id}/start/confirm/")
        supervisor.post_form(f"/campaigns/{campaign_id}/start/", confirm, {})
        started = time.monotonic()
        agent.start()
        # Until the stand-in has every row, or sends stop coming for a minute.
        last_count, last_change = 0, time.monotonic()
        while True:
            portal.check_alive()
            sent = sum(1 for _, to in standin.sends if to.startswith(CAMPAIGN_PREFIX))
            if sent >= rows:
                break
            if sent != last_count:
                last_count, last_change = sent, time.monotonic()
            elif time.monotonic() - last_change > 60:
                print("  campaign stalled: see the logs", file=sys.stderr)
                break
            if time.monotonic() - started > 5 and int(time.monotonic() - started) % 10 == 0:
                print(
                    f"  {time.monotonic() - started:5.0f} s: {sent}/{rows} sent,"
                    f" {len(standin.posts)} posts, {watcher.waiting()} waiting",
                    file=sys.stderr,
                    flush=True,
                )
            time.sleep(1)
        agent.stopped.set()
        agent.join()
        sending_s = time.monotonic() - started
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline and not (standin.idle() and not watcher.waiting()):
            portal.check_alive()
            time.sleep(0.2)
        time.sleep(1.0)  # what follows the deciding deliveries (duplicates, late attempts)
        drain_s = time.monotonic() - started - sending_s
        used = cpu.stop()
        own_cpu = time.process_time() - own_cpu
        load_after = os.getloadavg()
        watcher.stopped.set()
        watcher.join()
        result = check(args.db, standin, campaign_id, rows)
    finally:
        watcher.stopped.set()
        if portal:
            portal.stop()
        if standin:
            standin.close()
    sends = [t for t, to in standin.sends if to.startswith(CAMPAIGN_PREFIX)]
    result |= pace_held(sends, args.pace)
    span = (max(sends) - min(sends)) if len(sends) > 1 else float("nan")
    posts = standin.posts
    during = [p for p in posts if sends and min(sends) <= p.started <= max(sends)]
    ok_seconds = [p.seconds for p in posts if p.status in (200, 202)]
    calls_sent = sum(standin.send_counts().values())
    result |= {
        "label": label,
        "code": str(code),
        "rows": rows,
        "form_calls": agent.placed,
        "form_refused": len(agent.refused),
        "form_refusals": agent.refused[:3],
        "form_p50_ms": pct(agent.seconds, 0.5) * 1000,
        "form_p99_ms": pct(agent.seconds, 0.99) * 1000,
        "upload_s": upload_s,
        "sending_s": sending_s,
        "drain_s": drain_s,
        "posts": len(posts),
        "posts_non_2xx": sum(1 for p in posts if p.status not in (200, 202)),
        "posts_unknown": sum(1 for p in posts if p.kind == "unknown"),
        "deliveries_per_s": len(during) / span if span else float("nan"),
        "hook_p50_ms": pct(ok_seconds, 0.5) * 1000,
        "hook_p99_ms": pct(ok_seconds, 0.99) * 1000,
        "visible_p50_ms": pct(watcher.latencies, 0.5) * 1000,
        "visible_p99_ms": pct(watcher.latencies, 0.99) * 1000,
        "visible_max_ms": max(watcher.latencies, default=float("nan")) * 1000,
        "visible_measured": len(watcher.latencies),
        "cpu_ms_per_call": {k: v * 1000 / calls_sent for k, v in used.items()},
        "bench_cpu_ms_per_call": own_cpu * 1000 / calls_sent if calls_sent else float("nan"),
        "load": [load_before[0], load_after[0]],
    }
    return result


def imported(db: str, campaign_id: int, portal: Portal) -> int:
    """Wait for the campaign's CSV to be imported (by a worker, where imports run in the
    background); its rows."""
    deadline = time.monotonic() + 300
    with connect(db, "bench-check") as conn:
        while True:
            status, rows = conn.execute(
                "SELECT status, (SELECT count(*) FROM calls_calllog WHERE campaign_id = c.id)"
                " FROM calls_campaign AS c WHERE id = %s",
                [campaign_id],
            ).fetchone()
            if status != "importing":
                return int(rows)
            portal.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError("the campaign's import did not end in 300 s")
            time.sleep(0.2)


def pace_held(sends: list[float], pace: float) -> dict[str, object]:
    """Sends per second from the first campaign send to the last; whole seconds under 90 %."""
    if len(sends) < 2:
        return {"pace_mean": float("nan"), "seconds_below_90": 0, "seconds": 0}
    first, last = min(sends), max(sends)
    per_second = Counter(int(t - first) for t in sends)
    whole = int(last - first)  # the last, partial second is not judged
    below = sum(1 for s in range(whole) if per_second[s] < 0.9 * pace)
    return {
        "pace_mean": (len(sends) - 1) / (last - first),
        "seconds_below_90": below,
        "seconds": whole,
    }


def check(db: str, standin: StandIn, campaign_id: int, rows: int) -> dict[str, object]:
    """What the database ends with, against what the stand-in was sent and says happened."""
    counts = standin.send_counts()
    with connect(db, "bench-check") as conn:
        calls = conn.execute(
            'SELECT "to", status, started_at, campaign_id FROM calls_calllog'
        ).fetchall()
        events, stored, unmatched = conn.execute(
            "SELECT count(*), coalesce(sum(deliveries), 0), count(*) FILTER (WHERE call_id IS NULL)"
            " FROM calls_callevent WHERE source = 'webhook'"
        ).fetchone()
        applied: dict[str, object] = {}
        has_applied_at = conn.execute(
            "SELECT 1 FROM information_schema.columns"
            " WHERE table_name = 'calls_callevent' AND column_name = 'applied_at'"
        ).fetchone()
        if has_applied_at:
            p50, p99, waiting = conn.execute(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d),"
                " percentile_cont(0.99) WITHIN GROUP (ORDER BY d),"
                " (SELECT count(*) FROM calls_callevent WHERE applied_at IS NULL)"
                " FROM (SELECT extract(epoch FROM applied_at - received_at) * 1000 AS d"
                " FROM calls_callevent WHERE applied_at IS NOT NULL) AS t"
            ).fetchone()
            applied = {"applied_p50_ms": p50, "applied_p99_ms": p99, "not_applied": waiting}
        pickup = conn.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d),"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY d), max(d), count(*)"
            " FROM (SELECT extract(epoch FROM submitted_at - created_at) * 1000 AS d"
            " FROM calls_calllog WHERE campaign_id IS NULL AND submitted_at IS NOT NULL) AS t"
        ).fetchone()
    in_db = {to: (status, started_at) for to, status, started_at, _ in calls}
    ok = 0
    wrong: list[str] = []
    for to, expected in standin.expected.items():
        status, started_at = in_db.get(to, ("missing", None))
        if status == expected.status and started_at == expected.started_at:
            ok += 1
        elif len(wrong) < 5:
            wrong.append(
                f"{to}: {status} {started_at} (want {expected.status} {expected.started_at})"
            )
    by_status = Counter(status for _, status, _, _ in calls)
    posted_ok = sum(1 for p in standin.posts if p.status in (200, 202))
    return {
        "calls": len(calls),
        "sent_once": sum(1 for to in in_db if counts.get(to) == 1),
        "sent_twice": sum(1 for n in counts.values() if n > 1),
        "never_sent": sum(1 for to in in_db if to not in counts),
        "campaign_rows_sent": sum(1 for to, *_, c in calls if c == campaign_id and to in counts),
        "expected": len(standin.expected),
        "applied": ok,
        "lost": len(standin.expected) - ok,
        "lost_examples": wrong,
        "by_status": dict(by_status),
        "events": events,
        "deliveries_stored": stored,
        "deliveries_2xx": posted_ok,
        "events_unmatched": unmatched,
        "pickup_ms": [float(v) if v is not None else None for v in pickup],
        **applied,
    }


# --- Report ----------------------------------------------------------------------------------


def fmt(value: object, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if value != value else f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(results: list[dict], args: argparse.Namespace) -> str:
    head = "| | " + " | ".join(f"{r['label']} (`{r['code']}`)" for r in results) + " |"
    lines = [head, "|---" * (len(results) + 1) + "|"]

    def row(name: str, cell) -> None:
        lines.append(f"| {name} | " + " | ".join(cell(r) for r in results) + " |")

    row(
        "calls placed (campaign rows + call form)", lambda r: f"{r['rows']:,} + {r['form_calls']:,}"
    )
    row("form posts refused", lambda r: fmt(r["form_refused"]))
    row(
        "sent once each / sent twice / never sent",
        lambda r: f"{r['sent_once']:,} / **{r['sent_twice']}** / {r['never_sent']}",
    )
    row("outcomes applied / expected", lambda r: f"{r['applied']:,} / {r['expected']:,}")
    row("**lost** (must be 0)", lambda r: f"**{r['lost']}**")
    row(
        "deliveries posted (2xx) / stored (incl. duplicates counted)",
        lambda r: f"{r['posts']:,} ({r['deliveries_2xx']:,}) / {r['deliveries_stored']:,}",
    )
    row(
        "  of which unknown ids / events left unmatched",
        lambda r: f"{r['posts_unknown']} / {r['events_unmatched']}",
    )
    row("deliveries/s while the campaign sent", lambda r: fmt(r["deliveries_per_s"], 1))
    row(
        f"pace held (set {args.pace:g}/s): mean / seconds < 90 %",
        lambda r: f"{fmt(r['pace_mean'], 2)}/s / {r['seconds_below_90']} of {r['seconds']}",
    )
    row(
        "webhook response p50 / p99 ms",
        lambda r: f"{fmt(r['hook_p50_ms'], 1)} / {fmt(r['hook_p99_ms'], 1)}",
    )
    row(
        f"delivery to visible p50 / p99 / max ms (target p99 < {TARGET_P99_S * 1000:.0f})",
        lambda r: (
            f"{fmt(r['visible_p50_ms'])} / **{fmt(r['visible_p99_ms'])}** / "
            f"{fmt(r['visible_max_ms'])}"
        ),
    )
    row(
        "  applied_at - received_at p50 / p99 ms (stored, never applied)",
        lambda r: (
            f"{fmt(r.get('applied_p50_ms'))} / {fmt(r.get('applied_p99_ms'))}"
            f" ({r.get('not_applied')})"
            if r.get("applied_p50_ms") is not None
            else "-"
        ),
    )
    row(
        f"pickup, form call stored to POST begun, p50 / p99 / max ms (target p99 < "
        f"{TARGET_P99_S * 1000:.0f}; calls)",
        lambda r: (
            f"{fmt(r['pickup_ms'][0])} / **{fmt(r['pickup_ms'][1])}** / {fmt(r['pickup_ms'][2])}"
            f" ({fmt(r['pickup_ms'][3])})"
        ),
    )
    row(
        "call form POST p50 / p99 ms",
        lambda r: f"{fmt(r['form_p50_ms'])} / {fmt(r['form_p99_ms'])}",
    )

    def cpu(r: dict) -> str:
        c = r["cpu_ms_per_call"]
        workers = sum(v for k, v in c.items() if k not in {"web", "postgres"})
        parts = f"{c.get('web', 0.0):.2f} web + {workers:.2f} workers + {c.get('postgres', 0.0):.2f} postgres"
        return f"**{sum(c.values()):.2f}** ({parts})"

    def each_worker(r: dict) -> str:
        c = r["cpu_ms_per_call"]
        return " + ".join(f"{v:.2f} {k}" for k, v in c.items() if k not in {"web", "postgres"})

    row("CPU ms per call sent", cpu)
    row("  of which each worker", each_worker)
    row(
        "  bench + stand-in CPU ms per call (not counted)",
        lambda r: fmt(r["bench_cpu_ms_per_call"], 2),
    )
    row(
        "upload / sending / drain s",
        lambda r: f"{r['upload_s']:.1f} / {r['sending_s']:.0f} / {r['drain_s']:.0f}",
    )
    row("load average before / after", lambda r: f"{r['load'][0]:.1f} / {r['load'][1]:.1f}")
    return "\n".join(lines)


def export(commit: str, into: Path) -> Path:
    """The tree of `commit` as plain files in a directory of its own (no checkout disturbed)."""
    target = into / f"code-{commit}"
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit], cwd=REPO, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--code",
        action="append",
        type=Path,
        help="a checkout to run (repeatable, in order); default this repository",
    )
    parser.add_argument("--before", help="a commit to run alternately with this working tree")
    parser.add_argument("--rounds", type=int, default=1, help="with --before: runs of each")
    parser.add_argument("--rows", type=int, default=10_000, help="campaign rows")
    parser.add_argument("--quick", action="store_true", help="1,000 rows")
    parser.add_argument("--pace", type=float, default=100, help="campaign calls per second")
    parser.add_argument("--form-rate", type=float, default=2, help="single calls per second")
    parser.add_argument(
        "--form-calls",
        type=int,
        default=100,
        help="at most this many single calls: the same work in every run, however long it takes",
    )
    parser.add_argument("--drain", type=float, default=60, help="seconds to wait at the end")
    parser.add_argument("--poll", type=float, default=0.05, help="watcher's poll interval (s)")
    parser.add_argument("--db", default="obd_h3", help="the database to recreate")
    parser.add_argument("--log-dir", type=Path, help="default: a temporary directory")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.rows = 1000
    # Stopped with SIGTERM: the portal's processes are stopped too (the `finally` in run).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))
    log_root = args.log_dir or Path(tempfile.mkdtemp(prefix="bench-system-"))
    if args.before:
        before = export(args.before, log_root)
        runs = [(f"before ({args.before})", before), ("after (working tree)", REPO)] * args.rounds
    else:
        runs = [("", code.resolve()) for code in args.code or [REPO]]
    results = []
    for number, (label, code) in enumerate(runs):
        log_dir = log_root / f"{number}-{code.name}"
        log_dir.mkdir(parents=True, exist_ok=True)
        results.append(run(code, args, log_dir, label))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
    print(
        f"\n{args.rows:,}-row campaign at {args.pace:g} calls/s + call form at "
        f"{args.form_rate:g}/s; gunicorn --workers 2, 3 workers, PostgreSQL; {os.cpu_count()} cores"
        f" (load average now {os.getloadavg()[0]:.1f})\n"
    )
    print(table(results, args))
    for r in results:
        for example in r["lost_examples"]:
            print(f"  {r['label']} lost: {example}")
        for refusal in r["form_refusals"]:
            print(f"  {r['label']} form refused: {refusal}")
        print(f"  {r['label']} calls by status: {r['by_status']}")
    failed = any(r["lost"] or r["sent_twice"] for r in results)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
