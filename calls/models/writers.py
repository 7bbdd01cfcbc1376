"""SQLite's one writer, taken in turn. SQLite keeps no queue for its write lock: a writer that finds
it taken sleeps and looks again (1, 2, 5, 10 ms…), and can miss a lock let go and taken again at
once, so the webhook door waited 10 to 20 ms behind deliveries applied in slices of a few ms. The door
and the deliveries worker take their turn on an exclusive lock of a file beside the database
(`flock`) before they write: the kernel wakes a waiter the moment the holder lets go, and frees a
killed holder's turn. Other writers (pages, the admin) keep SQLite's own wait.

PostgreSQL locks rows, and a writer never waits for the whole database: no turn is taken there."""

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections

_files = threading.local()  # each thread its own open file: flock orders threads too


@contextmanager
def turn(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Hold the write turn for what the block writes. Not taken inside a transaction: one that
    holds SQLite's lock already must never wait for a turn held by a writer waiting for it."""
    connection = connections[using]
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    lock = _lock_file(str(connection.settings_dict["NAME"]))
    if lock is None:
        yield
        return
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)


def _lock_file(database: str) -> int | None:
    """This thread's descriptor of the lock file beside `database`; None for a database only in
    memory (one process: SQLite's own wait is all there is)."""
    if database == ":memory:" or "mode=memory" in database:
        return None
    opened: dict[str, int] = _files.__dict__.setdefault("opened", {})
    if database not in opened:
        opened[database] = os.open(f"{database}-writer", os.O_RDWR | os.O_CREAT, 0o600)
    return opened[database]
