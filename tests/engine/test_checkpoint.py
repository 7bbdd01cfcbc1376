"""SQLite's write-ahead log is copied into the database file by the engine, not by a request."""

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import ConnectionHandler
from django.utils import timezone

from calls.engine import clock
from calls.engine.clock import CHECKPOINT_EVERY, Engine, checkpoint
from calls.engine.processes import Process
from calls.models import WorkerHeartbeat
from tests.helpers.settings import read_settings

ROWS = 1500  # commits of a page or more each: past SQLite's own threshold of 1,000 pages


@pytest.fixture
def portal_sqlite(
    tmp_path: Path, django_db_blocker: Any
) -> Iterator[tuple[BaseDatabaseWrapper, Path]]:
    """A connection configured as the portal configures SQLite, to a database of its own
    (whatever the tests run on)."""
    path = tmp_path / "portal.sqlite3"
    databases = read_settings("DATABASES", DATABASE_URL=f"sqlite:///{path}")["DATABASES"]
    db = ConnectionHandler(databases)["default"]  # type: ignore[arg-type]
    with django_db_blocker.unblock():
        yield db, path
        db.close()


def in_the_file(path: Path) -> int:
    """Rows the database file itself holds (immutable: SQLite reads the file, not the log)."""
    reader = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(reader.execute("SELECT count(*) FROM note").fetchone()[0])
    except sqlite3.OperationalError:  # the table itself is still in the log
        return 0
    finally:
        reader.close()


def test_commits_past_sqlites_threshold_leave_the_copy_to_the_engines_checkpoint(portal_sqlite):
    db, path = portal_sqlite
    with db.cursor() as cursor:
        cursor.execute("CREATE TABLE note (body TEXT)")
        for _ in range(ROWS):  # each its own commit, as the door's deliveries
            cursor.execute("INSERT INTO note (body) VALUES (%s)", ["x" * 5000])

    assert in_the_file(path) == 0  # no commit paid for a copy

    checkpoint(db)

    assert in_the_file(path) == ROWS


def test_a_checkpoint_that_fails_is_logged_and_nothing_else_stops(portal_sqlite, caplog):
    db, _ = portal_sqlite
    with db.cursor() as cursor:
        cursor.execute("CREATE TABLE note (body TEXT)")
        cursor.execute("BEGIN")  # SQLite refuses a checkpoint inside the connection's transaction
        cursor.execute("INSERT INTO note (body) VALUES ('x')")

        checkpoint(db)

        cursor.execute("COMMIT")
    assert "WAL checkpoint failed" in caplog.text


@pytest.mark.django_db
def test_the_engine_checkpoints_once_every_interval(monkeypatch):
    done: list[str] = []
    monkeypatch.setattr(clock, "checkpoint", lambda db: done.append(db.alias))
    start = timezone.now()
    steps = iter(start + CHECKPOINT_EVERY * 0.4 * i for i in range(5))  # 0, 0.4 … 1.6 s
    engine = Engine(
        Process(WorkerHeartbeat.Kind.ENGINE), jobs=(), deliveries=False, now=lambda: next(steps)
    )

    for _ in range(5):
        engine.step()

    assert done == [connection.alias] * 2  # at 0 and at 1.2 s
