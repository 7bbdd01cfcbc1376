"""Work is picked up when it is stored, not at the next poll: on PostgreSQL a queued task wakes a
real worker and a stored delivery wakes a real deliveries applier (LISTEN/NOTIFY), both started
with a 30 s interval, so work done within seconds was woken. A listener whose connection is
killed (`pg_terminate_backend`) listens again by itself, and its process never exits. On a
throwaway server of the test's own, as the restart test uses."""

import signal
import sys
import time
from collections.abc import Iterator

import pytest

from tests.system.cluster import Cluster, throwaway_cluster
from tests.system.processes import Processes, wait_until
from tests.system.test_database_restart import manage

LONG = "30"  # seconds between polls: far longer than any wait below
WOKEN_WITHIN = 10  # generous, for a loaded machine; a poll would take LONG
PLACE = """
from django.db import transaction
from calls.engine.sends import queue_send
from calls.models import AudioAsset, Bridge, CallLog
bridge, _ = Bridge.objects.get_or_create(number="918040000000", defaults={"label": "Bengaluru"})
sound, _ = AudioAsset.objects.get_or_create(name="Reminder", defaults={"sound_id": "39888925"})
with transaction.atomic():
    queue_send(CallLog.objects.create(bridge=bridge, audio=sound, to="%s"))
"""
DELIVER = """
from calls.models import CallEvent
CallEvent.objects.store(source="webhook", body=b'{"mid": "%s", "status": "BUSY"}')
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as server:
        yield server


@pytest.fixture(scope="module")
def portal(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    """A worker and a deliveries applier, each polling only every 30 s, on the sandbox."""
    env = {"DATABASE_URL": cluster.url(), "MOBTEXTING_API_TOKEN": "", "OBD_WEBHOOK_SECRET": "s"}
    processes = Processes(env, tmp_path_factory.mktemp("wake"))
    manage(processes.env, "migrate", "--no-input", "-v", "0")
    manage_py = [sys.executable, "manage.py"]
    processes.start("worker", [*manage_py, "worker", "--queue-name", "*", "--interval", LONG])
    processes.start("applier", [*manage_py, "apply_deliveries", "--interval", LONG])
    wait_until(lambda: len(listening(cluster)) == 2, 60, "both processes to listen")
    yield processes
    processes.stop()


def listening(cluster: Cluster) -> list[int]:
    """The server processes of connections that wait for notices (their last statement LISTEN)."""
    rows = cluster.query(
        "SELECT pid FROM pg_stat_activity WHERE datname = 'obd' AND query LIKE 'LISTEN %%'"
    )
    return [pid for (pid,) in rows]


def place_call(processes: Processes, cluster: Cluster, number: str) -> None:
    manage(processes.env, "shell", "-c", PLACE % number)
    placed = time.monotonic()
    wait_until(lambda: sent(cluster, number), WOKEN_WITHIN, f"the call to {number} to be sent")
    assert time.monotonic() - placed < int(LONG)


def sent(cluster: Cluster, number: str) -> bool:
    rows = cluster.query('SELECT status FROM calls_calllog WHERE "to" = %s', number)
    return rows not in ([], [("pending",)], [("sending",)])


def deliver(processes: Processes, cluster: Cluster, call_id: str) -> None:
    manage(processes.env, "shell", "-c", DELIVER % call_id)
    wait_until(lambda: applied(cluster, call_id), WOKEN_WITHIN, f"the delivery {call_id} applied")


def applied(cluster: Cluster, call_id: str) -> bool:
    rows = cluster.query(
        "SELECT applied_at IS NOT NULL FROM calls_callevent WHERE body LIKE %s", f"%{call_id}%"
    )
    return rows == [(True,)]


def test_a_queued_send_wakes_a_worker_long_before_its_next_poll(portal, cluster):
    place_call(portal, cluster, "919876500001")


def test_a_stored_delivery_wakes_the_applier_long_before_its_next_poll(portal, cluster):
    deliver(portal, cluster, "wake-1")


def test_listeners_whose_connections_are_killed_listen_again_and_are_woken(portal, cluster):
    killed = listening(cluster)
    cluster.query("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", killed)
    wait_until(lambda: len(set(listening(cluster)) - set(killed)) == 2, 60, "both to listen again")

    place_call(portal, cluster, "919876500002")
    deliver(portal, cluster, "wake-2")
    assert all(portal.alive().values()), portal.log("worker")[-3000:]
    assert "listening for notices again" in portal.log("worker")


def test_a_worker_waiting_for_notices_stops_at_once_on_sigterm(portal, cluster):
    before = set(listening(cluster))
    portal.start("stopping", [sys.executable, "manage.py", "worker", "--interval", LONG])
    wait_until(lambda: len(set(listening(cluster)) - before) == 1, 60, "the worker to listen")

    stopping = portal.running["stopping"]
    stopping.send_signal(signal.SIGTERM)

    assert stopping.wait(timeout=WOKEN_WITHIN) == 0  # not at its next poll, 30 s away
    wait_until(lambda: set(listening(cluster)) == before, 10, "its listening connection closed")
