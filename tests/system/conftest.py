"""System tests: the portal's real processes (workers, the engine, gunicorn, runserver) on the
test database, killed and fed as production would be."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = [sys.executable, "-m", "gunicorn", "obdportal.wsgi", "--workers", "2"]
GUNICORN += ["--no-control-socket"]
WORKER = [sys.executable, "manage.py", "worker", "--queue-name", "*"]
ENGINE = [sys.executable, "manage.py", "engine"]


def database_url() -> str:
    """The test database as a DATABASE_URL, for a separate process to share it."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "") + (":" + quote(db["PASSWORD"]) if db["PASSWORD"] else "")
    options = db.get("OPTIONS", {})  # a socket directory given as ?host= lands here
    host = db["HOST"] or options.get("host") or "localhost"
    port = db["PORT"] or options.get("port") or 5432
    if host.startswith("/"):  # a Unix socket directory: a URL's host cannot hold it
        return f"postgres://{auth}@/{db['NAME']}?host={quote(host)}&port={port}"
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def start_db_worker(**env: str) -> subprocess.Popen[bytes]:
    """A real worker on the test database, on every queue, as `make run` starts them."""
    return start([*WORKER, "--interval", "0.2", "--no-startup-delay"], **env)


def start_engine(**env: str) -> subprocess.Popen[bytes]:
    """A real engine on the test database (periodic jobs, webhook deliveries)."""
    return start(ENGINE, **env)


def start(command: list[str], **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url(), "OBD_TRAI_PRESET": "false", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass
class Server:
    url: str
    log: Path


def serve(command: list[str], log: Path, **env: str) -> Iterator[str]:
    """Start a server process on a free port with its output in `log`; its URL once /healthz
    answers; stopped after."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, f"127.0.0.1:{port}"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": database_url(), "OBD_TRAI_PRESET": "false", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers (503 while no worker runs beside it)
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{command} did not start: {log.read_text()}") from None
                time.sleep(0.2)
        yield url
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def gunicorn(transactional_db, tmp_path) -> Iterator[Server]:
    """The portal under gunicorn, as the Procfile runs it (access log on), on the test database.
    Its logs (access log and application log) are files the test can search."""
    log = tmp_path / "gunicorn.log"
    for url in serve(
        [*GUNICORN, "--access-logfile", "-", "--bind"],
        log,
        OBD_WEBHOOK_SECRET="hook-secret",
        OBD_WEBHOOK_VERIFICATION_TOKEN="verify-me",
        OBD_SANDBOX_DELAY_SECONDS="1",
        MOBTEXTING_API_TOKEN="",
        LOG_LEVEL="DEBUG",
    ):
        yield Server(url=url, log=log)


@pytest.fixture
def runserver(transactional_db, tmp_path) -> Iterator[Server]:
    """The portal under `manage.py runserver`, as `make run` serves it."""
    log = tmp_path / "runserver.log"
    command = [sys.executable, "manage.py", "runserver", "--noreload"]
    for url in serve(command, log, OBD_WEBHOOK_SECRET="hook-secret", MOBTEXTING_API_TOKEN=""):
        yield Server(url=url, log=log)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
