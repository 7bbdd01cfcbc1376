"""The portal's processes as production runs them (the Procfile's kinds: web under gunicorn, the
workers, the engine) on one database, each killable and started again as its supervisor would,
with its output in a log file of its own."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.system.conftest import ROOT, free_port

COMMANDS = {
    "web": [sys.executable, "-m", "gunicorn", "obdportal.wsgi", "--workers", "2"],
    "engine": [sys.executable, "manage.py", "engine"],
}


def worker(queue: str) -> list[str]:
    return [sys.executable, "manage.py", "worker", "--queue-name", queue, "--interval", "0.2"]


class Processes:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = {**os.environ, "OBD_TRAI_PRESET": "false", **env}
        self.logs = logs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, list[str]] = {}

    def start(self, name: str, command: list[str] | None = None) -> None:
        """Start (or start again) the process called `name`."""
        command = self.commands[name] = command or self.commands.get(name) or COMMANDS[name]
        if name == "web":
            command = [*command, "--no-control-socket", "--bind", f"127.0.0.1:{self.port}"]
        with (self.logs / f"{name}.log").open("ab") as out:
            self.running[name] = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a group of its own, as systemd gives each unit
            )

    def kill(self, name: str) -> None:
        """SIGKILL to the process and its children (gunicorn's workers), no goodbye: as the
        OOM killer or systemd's KillMode=control-group would."""
        process = self.running[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def alive(self) -> dict[str, bool]:
        return {name: process.poll() is None for name, process in self.running.items()}

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def health(self) -> tuple[int, dict]:
        """/healthz's status and body; (0, {}) when the web server does not answer."""
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except OSError:
            return 0, {}

    def wait_for_web(self) -> None:
        wait_until(lambda: self.health()[0] != 0, 60, "the web server to answer")


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> float:
    """Poll until `condition`; how long it took. Fails only if it never happens in `seconds`
    (generous: the machine may be loaded)."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > seconds:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - began
