"""SQLite's write turn (calls/models/writers.py): the door's INSERT queues behind the deliveries
worker on a lock the kernel hands over at once, instead of SQLite's polling with back-off."""

import threading

import pytest
from django.db import connection, connections, transaction

from calls.models import CallEvent
from calls.models.writers import turn


def _store_in_a_thread(stored: threading.Event) -> threading.Thread:
    def door() -> None:
        CallEvent.objects.store(source="webhook", body=b'{"status": "ANSWER"}')
        connections.close_all()
        stored.set()

    thread = threading.Thread(target=door)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_the_door_waits_for_the_workers_turn_on_sqlite_and_never_on_postgresql():
    stored = threading.Event()
    with turn():  # the worker's slice, its SQLite lock not yet taken
        thread = _store_in_a_thread(stored)
        if connection.vendor == "sqlite":
            assert not stored.wait(0.3)  # in line until the turn is given back
        else:
            assert stored.wait(5)  # PostgreSQL has no turn: stored while it is held
    thread.join(5)

    assert stored.is_set() and CallEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_writer_inside_a_transaction_takes_no_turn_so_it_cannot_wait_on_one():
    with transaction.atomic():
        assert connection.in_atomic_block
        held, released = threading.Event(), threading.Event()
        holder = threading.Thread(target=_hold_turn, args=(held, released))
        holder.start()
        assert held.wait(5)  # another thread holds the turn now
        with turn():  # inside a transaction: not taken, so not waited for
            CallEvent.objects.store(source="webhook", body=b"{}")
        released.set()
    holder.join(5)
    assert CallEvent.objects.count() == 1


def _hold_turn(held: threading.Event, released: threading.Event) -> None:
    with turn():
        held.set()
        released.wait(10)
    connections.close_all()
