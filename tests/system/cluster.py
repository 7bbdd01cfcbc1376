"""A throwaway PostgreSQL server of the test's own, on a free port, that a test may stop and
restart as an operator would (`pg_ctl restart -m fast`) without touching anyone else's
database. Needs PostgreSQL's server binaries (OBD_TEST_PG_BIN, else the newest under
/usr/lib/postgresql); run as root, it runs them as the postgres user, as .ci/run does."""

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.system.conftest import free_port


def server_binaries() -> Path | None:
    given = os.environ.get("OBD_TEST_PG_BIN")
    if given:
        return Path(given)
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parent.parent.name
    )
    return found[-1].parent if found else None


@dataclass
class Cluster:
    bin: Path
    home: Path
    port: int

    @property
    def data(self) -> Path:
        return self.home / "data"

    def url(self, database: str = "obd") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def options(self) -> str:
        return (
            f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=100"
        )

    def run(self, *command: str) -> None:
        """A server binary, as the postgres user when this is root (the server refuses root)."""
        line = shlex.join([str(self.bin / command[0]), *command[1:]])
        if os.geteuid() == 0:
            argv = ["su", "postgres", "-s", "/bin/sh", "-c", line]
        else:
            argv = ["/bin/sh", "-c", line]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def pg_ctl(self, action: str) -> None:
        """start, stop or restart (fast: sessions are cut, as an operator's restart does)."""
        self.run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.home / "log"), "-m", "fast", "-w",
            "-o", self.options(), action,
        )  # fmt: skip

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def query(self, sql: str, *params: object) -> list[tuple]:
        with psycopg.connect(self.url(), connect_timeout=5, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    binaries = server_binaries()
    if binaries is None or not (binaries / "initdb").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL's server binaries are missing: CI must install them")
        pytest.skip("PostgreSQL's server binaries are not installed here (CI installs them)")
    home = Path(tempfile.mkdtemp(prefix="obd-test-pg."))
    if os.geteuid() == 0:
        shutil.chown(home, "postgres")
    cluster = Cluster(binaries, home, free_port())
    try:
        cluster.run("initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust")
        cluster.pg_ctl("start")
        cluster.run("createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "obd")
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # it may never have started
            cluster.run("pg_ctl", "-D", str(cluster.data), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)
