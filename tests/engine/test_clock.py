"""The engine (calls/engine/clock.py): one schedule, each due run claimed by compare-and-set
and run once however many engines run, its next run set from its interval (or sooner, when the
job says), a failing job recorded and run again later, a dead engine's runs taken over once
their lease runs out, deliveries applied in the same loop, and a database that fails a step
waited out."""

import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from calls.engine.clock import Engine, ensure_schedule
from calls.engine.jobs import JOBS, Job, Ran
from calls.engine.processes import Process
from calls.models import CallEvent, PeriodicJob, WorkerHeartbeat
from calls.models.engine import STALE
from tests.helpers.webhooks import push

pytestmark = pytest.mark.django_db(transaction=True)  # jobs run on the engine's own threads
EVERY = timedelta(minutes=5)


class Counting:
    """A job's work that counts its runs (and can be held until released)."""

    def __init__(self, ran: Ran | None = None, fail: bool = False, hold: bool = False) -> None:
        self.runs = 0
        self.ran = ran or Ran({"done": 1})
        self.fail = fail
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self) -> Ran:
        self.runs += 1
        self.release.wait(30)
        if self.fail:
            raise RuntimeError("the provider went away")
        return self.ran


def engine(*jobs: Job, deliveries: bool = False, **process: str) -> Engine:
    return Engine(Process(WorkerHeartbeat.Kind.ENGINE, **process), jobs=jobs, deliveries=deliveries)


def until(condition: Callable[[], bool], step: Callable[[], object], what: str) -> None:
    """Step the engine until `condition` (generously: the machine may be loaded)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        step()
        time.sleep(0.01)


def row(name: str) -> PeriodicJob:
    return PeriodicJob.objects.get(name=name)


def test_a_due_job_runs_once_and_its_next_run_is_set_from_its_interval():
    work = Counting()
    one = engine(Job("count", lambda: EVERY, work))
    ensure_schedule(one.jobs)

    until(lambda: row("count").last_finished_at is not None, one.step, "the run to end")
    for _ in range(5):
        one.step()

    job = row("count")
    assert work.runs == 1
    assert (job.last_result, job.last_error, job.lease_until, job.holder) == (
        {"done": 1},
        "",
        None,
        "",
    )
    assert job.every == EVERY
    assert job.last_finished_at + EVERY - timedelta(seconds=1) <= job.next_run_at
    assert job.next_run_at <= job.last_finished_at + EVERY
    assert WorkerHeartbeat.objects.filter(process=one.process.id, kind="engine").exists()


def test_a_job_that_knows_better_comes_back_sooner():
    soon = engine(Job("soon", lambda: EVERY, Counting(Ran({}, again_in=timedelta(seconds=3)))))
    ensure_schedule(soon.jobs)
    until(lambda: row("soon").last_finished_at is not None, soon.step, "the run to end")
    job = row("soon")
    assert job.next_run_at - job.last_finished_at < timedelta(seconds=4)


def test_a_failing_job_is_recorded_and_runs_again_after_its_interval_and_the_engine_goes_on():
    failing = engine(Job("fails", lambda: EVERY, Counting(fail=True)))
    ensure_schedule(failing.jobs)

    until(lambda: row("fails").last_finished_at is not None, failing.step, "the run to end")

    job = row("fails")
    assert job.last_error == "RuntimeError: the provider went away"
    assert job.next_run_at > timezone.now() + EVERY - timedelta(seconds=30)
    assert failing.step() is False  # still stepping


def test_two_engines_at_once_run_a_due_run_once():
    work = Counting(hold=True)
    job = Job("once", lambda: EVERY, work)
    first, second = engine(job), engine(job)
    ensure_schedule([job])

    until(lambda: "once" in first.running, first.step, "the first engine to take it")
    for _ in range(3):
        second.step()
    assert second.running == {} and row("once").holder == first.process.id
    work.release.set()
    until(lambda: row("once").last_finished_at is not None, first.step, "the run to end")
    second.step()

    assert work.runs == 1


def test_of_two_engines_that_read_a_due_run_together_one_claims_it():
    ensure_schedule(JOBS)
    seen_by_one, seen_by_other = row("sweep"), row("sweep")
    now = timezone.now()
    assert seen_by_one.claim("one", now)
    assert not seen_by_other.claim("other", now)
    assert row("sweep").holder == "one"


def test_a_dead_engines_run_is_taken_over_once_its_lease_runs_out_and_its_late_end_is_refused():
    work = Counting()
    job = Job("orphan", lambda: EVERY, work)
    ensure_schedule([job])
    assert row("orphan").claim("dead-engine", timezone.now())
    live = engine(job)
    for _ in range(3):
        live.step()
    assert work.runs == 0  # held, under its lease

    PeriodicJob.objects.filter(name="orphan").update(lease_until=timezone.now() - STALE)
    until(lambda: row("orphan").last_finished_at is not None, live.step, "the take-over")

    assert work.runs == 1
    assert not PeriodicJob.finish(
        "orphan",
        holder="dead-engine",
        started_at=timezone.now(),
        next_run_at=timezone.now(),
        every=EVERY,
        result={},
        error="",
    )


def test_a_running_job_keeps_its_lease_while_its_engine_beats():
    work = Counting(hold=True)
    busy = engine(Job("long", lambda: EVERY, work))
    ensure_schedule(busy.jobs)
    until(lambda: "long" in busy.running, busy.step, "the run to start")
    first = row("long").lease_until

    until(lambda: row("long").lease_until > first, busy.step, "the lease to be renewed")

    work.release.set()
    until(lambda: row("long").lease_until is None, busy.step, "the run to end")


def test_the_engine_applies_waiting_deliveries(make_call):
    call = make_call()
    CallEvent.objects.store(source="webhook", body=json.dumps(push(status="BUSY")).encode())
    applier = engine(deliveries=True)

    until(lambda: not CallEvent.objects.waiting().exists(), applier.step, "the delivery")

    call.refresh_from_db()
    assert call.status == "busy"


def test_a_database_failing_a_step_is_waited_out(monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr("calls.engine.processes.time.sleep", sleeps.append)
    failures = iter([OperationalError("the connection is closed")] * 3)

    def flaky(batch: int) -> int:
        if error := next(failures, None):
            raise error
        return 0

    monkeypatch.setattr("calls.engine.clock.apply_waiting", flaky)
    steady = engine(deliveries=True)

    assert [steady.step() for _ in range(4)] == [False] * 4
    assert sleeps == [0.5, 1.0, 2.0]  # then the database answered: no more waiting
    assert steady.backoff.failures == 0
    assert WorkerHeartbeat.objects.filter(process=steady.process.id).exists()


def test_the_schedule_holds_every_job_once_and_a_shortened_interval_brings_a_run_closer(
    settings,
):
    assert set(ensure_schedule()) == {job.name for job in JOBS}
    assert ensure_schedule() == []
    PeriodicJob.objects.filter(name="reconcile").update(
        next_run_at=timezone.now() + timedelta(hours=5)
    )
    settings.OBD_RECONCILE_EVERY_MINUTES = 1

    ensure_schedule()

    assert row("reconcile").next_run_at <= timezone.now() + timedelta(minutes=1)
    assert PeriodicJob.objects.count() == len(JOBS)


def test_a_stopped_engine_lets_its_runs_end_and_removes_its_beat():
    work = Counting()
    stopping = engine(Job("last", lambda: EVERY, work))
    stopping.interval = 0.01
    ensure_schedule(stopping.jobs)

    stopping.run(lambda: row("last").last_started_at is not None)  # SIGTERM as it starts

    assert work.runs == 1 and row("last").last_finished_at is not None
    assert not WorkerHeartbeat.objects.filter(process=stopping.process.id).exists()


def test_an_engine_whose_clock_is_set_back_keeps_its_beat_and_its_schedule(monkeypatch):
    """The clock set back an hour (a time sync, a machine restored): the engine still beats
    (else it is taken for dead and its runs taken over) and still reads its schedule, at their
    intervals, instead of waiting an hour for the clock to catch up."""
    clock = [timezone.now()]
    running = Engine(
        Process(WorkerHeartbeat.Kind.ENGINE),
        jobs=(Job("count", lambda: EVERY, Counting()),),
        deliveries=False,
        now=lambda: clock[0],
    )
    beats: list[object] = []
    looks: list[object] = []
    monkeypatch.setattr(Process, "beat", lambda process: beats.append(clock[0]))
    monkeypatch.setattr(running, "start_due", looks.append)
    running.step()
    clock[0] -= timedelta(hours=1)
    running.step()  # before the last time each was done: done again
    clock[0] += timedelta(milliseconds=100)
    running.step()  # within their intervals: not again

    assert len(beats) == 2
    assert len(looks) == 2
