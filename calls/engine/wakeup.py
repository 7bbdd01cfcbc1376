"""Waking a waiting loop as soon as work is stored, rather than at its next poll.

On PostgreSQL, storing work sends a notice on a channel (`NOTIFY`, which the server delivers when
the storing transaction commits, never before: a woken loop finds the work there): a queued task
on TASKS (the `task_enqueued` signal), a webhook delivery on DELIVERIES (a trigger on its table,
migration 0016, so the webhook door makes no extra round trip). A waiting loop LISTENs on a
connection of its own and wakes at the first notice.

Elsewhere (SQLite), and whenever the listening connection is broken (a database restart, a killed
backend), the loop polls at its interval as it always did, and the listener connects again at
its next wait by itself. A notice is only a hint: the loop still reads the work from its tables,
so a notice lost while the connection was down costs at most one interval."""

import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

import psycopg
from django.db import connections
from django.dispatch import receiver
from django.tasks.signals import task_enqueued
from psycopg import sql

logger = logging.getLogger(__name__)
TASKS = "obd_tasks"
DELIVERIES = "obd_deliveries"
CONNECT_TIMEOUT = 5  # seconds; a database that is away is tried again at the next wait


def notify(channel: str, using: str = "default") -> None:
    """Send a notice on `channel` with the current transaction (at once outside one)."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [channel])


@receiver(task_enqueued)
def wake_workers(sender: Any, **kwargs: Any) -> None:
    """A task was queued (django-tasks-db stores it on the default database): wake the workers.
    Queued inside a transaction (a dispatch seat's next task), the notice goes at its commit."""
    notify(TASKS)


class Listener:
    """Waits for notices on `channels` on a connection of its own (autocommit, so a notice is
    delivered as it comes); sleeps instead where there are none to be had."""

    def __init__(self, channels: Iterable[str], using: str = "default") -> None:
        self.channels = tuple(channels)
        self.using = using
        self.connection: psycopg.Connection[Any] | None = None
        self.broken = False  # logged once a spell, not at every wait

    @property
    def possible(self) -> bool:
        return connections[self.using].vendor == "postgresql"

    @property
    def listening(self) -> bool:
        return self.connection is not None

    def wait(self, timeout: float) -> bool:
        """Return at the first notice (True) or after `timeout` seconds (False). Having just
        (re)connected it returns at once: notices sent while it was not listening are lost, so
        the caller looks for work before waiting."""
        if not self.possible:
            time.sleep(timeout)
            return False
        if self.connection is None:
            started = time.monotonic()
            if self.listen():
                return True
            time.sleep(max(0.0, timeout - (time.monotonic() - started)))
            return False
        try:
            # Each generator run to its end (it holds the connection's lock while suspended).
            woken = bool(list(self.connection.notifies(timeout=timeout, stop_after=1)))
            if woken:  # many stored at once (a batch of sends) wake the loop once
                list(self.connection.notifies(timeout=0))
            return woken
        except psycopg.Error as error:
            self.lost(error)
            return False

    def listen(self) -> bool:
        params = connections[self.using].get_connection_params()
        params["connect_timeout"] = CONNECT_TIMEOUT
        try:
            connection = psycopg.connect(**params, autocommit=True)
            for channel in self.channels:
                connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except psycopg.Error as error:
            self.lost(error)
            return False
        self.connection = connection
        if self.broken:
            logger.warning("listening for notices again on %s", ", ".join(self.channels))
            self.broken = False
        return True

    def lost(self, error: Exception) -> None:
        if not self.broken:
            logger.warning("not listening for notices (polling meanwhile): %s", error)
            self.broken = True
        self.close()

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(psycopg.Error):
                self.connection.close()
            self.connection = None
