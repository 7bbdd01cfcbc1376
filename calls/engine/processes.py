"""This process as the others see it (its id and its beat), and how every background loop
outlives a database restart: it catches the database's errors, drops its connections, waits a
little longer each time (at most a few seconds) and goes on. No process exits for it."""

import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field

from django.db import Error as DatabaseFailure
from django.db import connections
from django.utils import timezone

from calls.models.engine import BEAT, WorkerHeartbeat

logger = logging.getLogger(__name__)
# Every error a database connection raises: DatabaseError (OperationalError "the connection is
# closed", "terminating connection due to administrator command") and InterfaceError.
DATABASE_ERRORS = (DatabaseFailure,)
MOST_WAIT = 5.0  # seconds between tries once the database has been away a while


def new_process_id() -> str:
    """Unique across machines and restarts; short enough for the queue's worker id (64)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Process:
    """A background process: what kind, which queues (a worker's), and its id."""

    kind: WorkerHeartbeat.Kind
    queues: str = ""
    id: str = field(default_factory=new_process_id)

    def beat(self) -> None:
        now = timezone.now()
        if not WorkerHeartbeat.objects.filter(process=self.id).update(beat_at=now):
            WorkerHeartbeat.objects.update_or_create(
                process=self.id,
                defaults={
                    "kind": self.kind,
                    "queues": self.queues,
                    "host": socket.gethostname()[:255],
                    "pid": os.getpid(),
                    "started_at": now,
                    "beat_at": now,
                },
            )

    def forget(self) -> None:
        """Stopped on purpose: no stale beat left to alarm anyone."""
        try:
            WorkerHeartbeat.objects.filter(process=self.id).delete()
        except DATABASE_ERRORS:
            logger.warning("process=%s stopped without removing its beat", self.id)


class Backoff:
    """What a loop does when the database fails it: log (the first time with the traceback),
    drop this thread's connections so the next query connects afresh, wait 0.5 s, 1 s, 2 s …
    up to MOST_WAIT. A failure after a quiet while (or `recovered()`) starts again at 0.5 s."""

    QUIET = 30.0  # seconds without a failure after which the database counts as back

    def __init__(self, what: str) -> None:
        self.what = what
        self.failures = 0
        self.last = 0.0

    def failed(self, error: Exception) -> None:
        if time.monotonic() - self.last > self.QUIET:
            self.failures = 0
        self.failures += 1
        if self.failures == 1:
            logger.exception("%s: the database failed; trying again shortly", self.what)
        else:
            logger.warning(
                "%s: database still failing (try %s): %s", self.what, self.failures, error
            )
        connections.close_all()
        time.sleep(min(0.5 * 2 ** (self.failures - 1), MOST_WAIT))
        self.last = time.monotonic()

    def recovered(self) -> None:
        if self.failures:
            logger.warning(
                "%s: the database is back after %s failed tries", self.what, self.failures
            )
        self.failures = 0


class Beater(threading.Thread):
    """Beats for `process` every BEAT on a thread of its own (its own connection), so a worker
    busy with a long task still shows alive; a worker killed or cut off from the database stops
    beating, and /healthz says so."""

    def __init__(self, process: Process) -> None:
        super().__init__(name=f"beat-{process.kind}", daemon=True)
        self.process = process
        self.stopped = threading.Event()

    def run(self) -> None:
        backoff = Backoff(f"{self.process.kind} beat")
        try:
            while not self.stopped.is_set():
                try:
                    self.process.beat()
                    backoff.recovered()
                except DATABASE_ERRORS as error:
                    backoff.failed(error)
                    continue
                self.stopped.wait(BEAT.total_seconds())
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=MOST_WAIT + 1)
