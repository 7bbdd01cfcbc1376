"""A background process's beat, and the back-off every loop uses when the database fails it
(calls/engine/processes.py); the worker command (django-tasks-db's worker, kept alive through
database failures) as its loop sees them."""

import time

import pytest
from django.core.management import call_command
from django.db import OperationalError

from calls.engine.processes import Backoff, Beater, Process
from calls.models import WorkerHeartbeat


def test_a_process_beats_into_its_own_row_and_removes_it_when_stopped(db):
    worker = Process(WorkerHeartbeat.Kind.WORKER, queues="campaigns")
    worker.beat()
    first = WorkerHeartbeat.objects.get(process=worker.id)
    worker.beat()

    again = WorkerHeartbeat.objects.get(process=worker.id)
    assert (again.kind, again.queues, again.started_at) == ("worker", "campaigns", first.started_at)
    assert again.beat_at >= first.beat_at
    assert again.takes("campaigns") and not again.takes("default")
    worker.forget()
    assert not WorkerHeartbeat.objects.exists()


def test_the_back_off_waits_longer_each_time_up_to_five_seconds_then_starts_again(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("calls.engine.processes.time.sleep", waits.append)
    backoff = Backoff("test loop")
    failure = OperationalError("the connection is closed")
    for _ in range(6):
        backoff.failed(failure)
    backoff.recovered()
    backoff.failed(failure)
    backoff.failed(failure)
    backoff.last -= Backoff.QUIET + 1  # then a quiet while: the database was back
    backoff.failed(failure)
    assert waits == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 0.5, 1.0, 0.5]


@pytest.mark.django_db(transaction=True)
def test_the_beat_thread_beats_on_its_own_connection_until_stopped():
    worker = Process(WorkerHeartbeat.Kind.WORKER, queues="*")
    beater = Beater(worker)
    beater.start()
    deadline = time.monotonic() + 30
    while not WorkerHeartbeat.objects.filter(process=worker.id).exists():
        assert time.monotonic() < deadline, "no beat"
        time.sleep(0.05)
    beater.stop()
    assert not beater.is_alive()


class FlakyWorker:
    """django-tasks-db's Worker as the command drives it: its loop raises what a database
    restart raises, twice, then returns as when stopped by a signal."""

    running = True

    made: list["FlakyWorker"] = []

    def __init__(self, **options: object) -> None:
        self.options = options
        self.runs = 0
        FlakyWorker.made.append(self)

    def configure_signals(self) -> None:
        pass

    def run(self) -> None:
        self.runs += 1
        if self.runs <= 2:
            raise OperationalError("the connection is closed")
        self.running = False


@pytest.mark.django_db(transaction=True)
def test_the_worker_command_outlives_the_database_failing_its_loop(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("calls.engine.processes.time.sleep", waits.append)
    monkeypatch.setattr("calls.management.commands.worker.Worker", FlakyWorker)

    call_command("worker", "--queue-name", "campaigns", "--no-startup-delay")

    [worker] = FlakyWorker.made
    assert worker.runs == 3 and waits == [0.5, 1.0]
    assert worker.options["queue_names"] == ["campaigns"]
    assert str(worker.options["worker_id"]).count("-") >= 2  # the process's id, as beaten
    assert not WorkerHeartbeat.objects.exists()  # stopped: its beat removed
