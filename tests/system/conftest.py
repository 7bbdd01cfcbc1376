"""System tests: the portal's real processes (db_worker, gunicorn, runserver) on the test
database, killed and fed as production would be."""

import os
import socket
import subprocess
import sys
import time
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
DB_WORKER = [sys.executable, "manage.py", "db_worker", "--queue-name", "*"]


def database_url() -> str:
    """The test database as a DATABASE_URL, for a separate process to share it."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "") + (":" + quote(db["PASSWORD"]) if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_db_worker(**env: str) -> subprocess.Popen[bytes]:
    """A real worker on the test database, on every queue, as `make run` starts them."""
    return subprocess.Popen(
        [*DB_WORKER, "--interval", "0.2", "--no-startup-delay", "--no-reload"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url(), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass
class Server:
    url: str
    log: Path


@pytest.fixture
def gunicorn(transactional_db, tmp_path) -> Iterator[Server]:
    """The portal under gunicorn, as the Procfile runs it (access log on), on the test database.
    Its logs (access log and application log) are files the test can search."""
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "OBD_WEBHOOK_SECRET": "hook-secret",
        "OBD_WEBHOOK_VERIFICATION_TOKEN": "verify-me",
        "OBD_SANDBOX_DELAY_SECONDS": "1",
        "MOBTEXTING_API_TOKEN": "",
        "LOG_LEVEL": "DEBUG",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*GUNICORN, "--bind", f"127.0.0.1:{port}", "--access-logfile", "-"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"gunicorn did not start: {log.read_text()}") from None
                time.sleep(0.2)
        yield Server(url=url, log=log)
        process.terminate()
        process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
