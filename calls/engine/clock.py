"""The engine: one loop per process that applies webhook deliveries as they come and runs the
periodic jobs (calls/engine/jobs.py) from one schedule, `PeriodicJob`.

Modelled on healthchecks' `sendalerts`: the loop claims work by compare-and-set and hands slow
work to a thread pool. Any number of engines may run. A due run is claimed under a lease that
its engine's beat renews while the job runs, so each due run runs once; an engine killed or cut
off from the database stops renewing, and another takes its jobs within STALE. The database
failing any step is waited out (processes.Backoff); the loop never exits for it."""

import logging
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from calls.engine.jobs import JOBS, Job, Ran
from calls.engine.processes import DATABASE_ERRORS, Backoff, Process
from calls.engine.wakeup import DELIVERIES, Listener
from calls.models import CallEvent, PeriodicJob, WorkerHeartbeat
from calls.models.engine import BEAT
from calls.models.events import BATCH, EARLY_WINDOW, LOOK_EARLY_EVERY, Reached, apply_waiting

logger = logging.getLogger(__name__)
LOOK_EVERY = timedelta(seconds=1)  # how often the schedule is read for due runs
NEVER = datetime.min.replace(tzinfo=UTC)
# How far the engine looks back for early deliveries once an EARLY_WINDOW: bounded, as
# deliveries about calls that are not ours stay unmatched for ever (kept for the admin).
LOOK_BACK = timedelta(days=1)
# Early deliveries a look back reads a look (`look_back_learned`): any number of them, a day's or
# every one kept, is read in parts of a few milliseconds each, so the loop never stalls on one.
LOOK_BACK_PART = 2000


@dataclass
class LookBack:
    """A look back for early deliveries under way: to `until` (the start, when None), at `at`
    (the newest first, when None)."""

    until: datetime | None
    at: Reached | None = None


# Seconds between two passes that a delivery woke, at least: a pass costs ~8 ms of CPU whatever
# its size, so a steady stream applied every 0.25 s (not 0.1) spends less per call, and a page
# that polls every 2 s still shows the outcome at its next look.
GATHER = 0.25
# SQLite: how often the engine copies the write-ahead log into the database file, so that no
# request does (settings raise each connection's own threshold).
CHECKPOINT_EVERY = timedelta(seconds=1)


def due(now: datetime, next_at: datetime, every: timedelta) -> bool:
    """Time for a duty done once an `every`, next at `next_at`: also when the clock was set back
    to before the last time it was done, which would otherwise put the duty off by as much (an
    engine set back an hour would not beat for an hour, and be taken for dead)."""
    return next_at == NEVER or not next_at - every <= now < next_at


def ensure_schedule(jobs: Iterable[Job] = JOBS, now: datetime | None = None) -> list[str]:
    """Put every job on the schedule (due now) unless it is there; a job whose interval was
    shortened comes due no later than the new interval. Safe to run any time, anywhere."""
    now = now or timezone.now()
    added = []
    for job in jobs:
        every = job.every()
        row, made = PeriodicJob.objects.get_or_create(
            name=job.name, defaults={"every": every, "next_run_at": now}
        )
        if made:
            added.append(job.name)
        elif row.next_run_at > now + every:
            PeriodicJob.objects.filter(pk=row.pk, next_run_at=row.next_run_at).update(
                next_run_at=now + every, every=every
            )
    return added


def checkpoint(db: BaseDatabaseWrapper) -> None:
    """SQLite: copy what the write-ahead log holds into the database file, waiting for no
    reader or writer (PASSIVE: what a reader still needs is left for the next time). The
    copy and its two fsyncs take milliseconds: a request that did it waited them. One that
    fails (a full disk) is logged and tried again at the next; the deliveries go on."""
    if db.vendor != "sqlite" or db.in_atomic_block:
        return
    try:
        with db.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except DATABASE_ERRORS as error:
        logger.warning("WAL checkpoint failed: %s", error)


@dataclass
class Outcome:
    """A run ended (in its thread); recorded by the loop, again and again if the database is
    away, while the loop's beat keeps the run's lease."""

    job: Job
    started_at: datetime
    ran: Ran | None = None
    error: str = ""


def run_job(job: Job, started_at: datetime) -> Outcome:
    """On a pool thread: run the job, whatever it raises, and leave no connection open."""
    try:
        return Outcome(job, started_at, ran=job.run())
    except Exception as exc:
        logger.exception("job=%s failed", job.name)
        last = traceback.format_exception_only(exc)[-1].strip()
        return Outcome(job, started_at, error=last[:2000])
    finally:
        connections.close_all()


@dataclass
class Engine:
    process: Process = field(default_factory=lambda: Process(WorkerHeartbeat.Kind.ENGINE))
    jobs: tuple[Job, ...] = JOBS
    deliveries: bool = True  # apply webhook deliveries in the loop
    batch: int = BATCH
    look_back_part: int = LOOK_BACK_PART  # early deliveries a look back reads a look
    interval: float = 0.1  # seconds between looks for deliveries when no notice can wake it
    now: Callable[[], datetime] = timezone.now

    def __post_init__(self) -> None:
        self.by_name = {job.name: job for job in self.jobs}
        self.pool = ThreadPoolExecutor(max_workers=max(len(self.jobs), 1), thread_name_prefix="job")
        self.running: dict[str, Future[Outcome]] = {}
        self.ended: list[Outcome] = []  # runs ended whose record is not written yet
        self.backoff = Backoff(f"{self.process.kind} {self.process.id}")
        self.next_look = self.next_beat = self.next_checkpoint = NEVER
        # The last look for deliveries that came before their call's answer; the looks back
        # under way, a part each in turn (the first to the start); when the last a day back began.
        self.looked_early = self.looked_back = NEVER
        self.looking_back: deque[LookBack] = deque([LookBack(until=None)])
        self.scheduled = False  # the jobs are on the schedule (checked once, at the start)
        self.listener = Listener([DELIVERIES] if self.deliveries else [])

    def run(self, stopping: Callable[[], bool]) -> None:
        """Loop until `stopping()`; then let the running jobs end and record them."""
        while not stopping():
            if not self.step():
                self.idle()
        self.listener.close()
        self.pool.shutdown(wait=True)
        try:
            self.collect()
            self.record()
        except DATABASE_ERRORS:  # their leases run out: another engine runs them again
            logger.warning("%s stopped without recording its last runs", self.process.id)
        self.process.forget()

    @property
    def next_early(self) -> datetime:
        return self.looked_early + LOOK_EARLY_EVERY

    def step(self) -> bool:
        """One pass: a batch of deliveries, the deliveries that came before their call's answer
        once a LOOK_EARLY_EVERY, the schedule once a LOOK_EVERY, the beat once a BEAT. True
        when a full batch was applied (more wait: no pause before the next)."""
        try:
            if not self.scheduled:
                ensure_schedule(self.jobs)
                self.scheduled = True
            busy = self.deliveries and apply_waiting(self.batch) >= self.batch
            now = self.now()
            if self.deliveries and due(now, self.next_early, LOOK_EARLY_EVERY):
                self.look_early(now)
            if due(now, self.next_beat, BEAT):
                self.beat(now)
            if due(now, self.next_checkpoint, CHECKPOINT_EVERY):
                self.next_checkpoint = now + CHECKPOINT_EVERY
                checkpoint(connection)
            self.collect()
            self.record()
            if self.jobs and due(now, self.next_look, LOOK_EVERY):
                self.start_due(now)
                self.next_look = now + LOOK_EVERY
        except DATABASE_ERRORS as error:
            self.backoff.failed(error)
            return False
        self.backoff.recovered()
        return busy

    def look_early(self, now: datetime) -> None:
        """Queue again the deliveries that came before their call's answer, once the call has
        their id: back EARLY_WINDOW from the last look, not from now, so that a loop held up
        (the database away, the machine paused) misses nothing meanwhile, however long; a gap
        longer than that is looked back at in parts. And a part of a look back, each in turn:
        to the start from a process's first look (one may have waited while no engine ran), and
        LOOK_BACK once an EARLY_WINDOW unless a bounded one is still under way, for whatever a
        look missed (a clock set back, a batch's look for the ids it taught failing after its
        commit)."""
        if self.looked_early == NEVER:
            self.looked_back = now  # the first look back, to the start, is under way
        else:
            since = min(self.looked_early, now) - EARLY_WINDOW
            held_up = since < now - 2 * EARLY_WINDOW  # one statement would read the whole gap
            CallEvent.objects.queue_again_learned(since=now - EARLY_WINDOW if held_up else since)
            if held_up:
                self.looking_back.append(LookBack(until=since))
        bounded = any(back.until is not None for back in self.looking_back)
        if not bounded and not self.looked_back <= now < self.looked_back + EARLY_WINDOW:
            self.looking_back.append(LookBack(until=now - LOOK_BACK))
            self.looked_back = now
        self.looked_early = now
        if self.looking_back:
            back = self.looking_back[0]
            back.at = CallEvent.objects.look_back_learned(
                before=back.at, until=back.until, part=self.look_back_part
            )
            self.looking_back.rotate(-1)
            if back.at is None:
                self.looking_back.pop()

    def idle(self) -> None:
        """Wait for work. Listening (PostgreSQL), a stored delivery wakes the loop, so it need
        not look before its next own duty (the schedule, the beat, the look for deliveries that
        came before their answer); otherwise it polls."""
        if not self.deliveries or not self.listener.possible:
            time.sleep(self.interval)
            return
        if not self.listener.listening:  # polls meanwhile; (re)connects first, at once if it can
            self.listener.wait(self.interval)
            return
        duties = [self.next_beat, self.next_early, *([self.next_look] if self.jobs else [])]
        # At most a look's interval: a clock set back would push every duty away by as much.
        until = min(min(duties) - self.now(), LOOK_EARLY_EVERY).total_seconds()
        began = time.monotonic()
        if self.listener.wait(max(self.interval, until)):
            # A steady stream would wake the loop for each delivery, and a batch of one costs
            # about what a batch of many does: woken soon after the last pass, it lets more
            # gather for a moment (an idle engine is woken with no delay).
            time.sleep(max(0.0, GATHER - (time.monotonic() - began)))

    def beat(self, now: datetime) -> None:
        self.process.beat()
        held = [*self.running, *(outcome.job.name for outcome in self.ended)]
        if held:
            PeriodicJob.renew(self.process.id, held, now)
        self.next_beat = now + BEAT

    def start_due(self, now: datetime) -> None:
        due = PeriodicJob.objects.due(now).filter(name__in=self.by_name)
        for row in due.exclude(name__in=self.running):
            if row.claim(self.process.id, now):
                started = row.last_started_at or now
                self.running[row.name] = self.pool.submit(run_job, self.by_name[row.name], started)

    def collect(self) -> None:
        for name, future in list(self.running.items()):
            if future.done():
                self.ended.append(future.result())
                del self.running[name]

    def record(self) -> None:
        """Write each ended run and its next time; stops at the first the database refuses
        (the rest wait for the next pass, their leases kept by the beat)."""
        while self.ended:
            outcome = self.ended[0]
            job, now = outcome.job, self.now()
            every = job.every()
            again_in = outcome.ran.again_in if outcome.ran else None
            mine = PeriodicJob.finish(
                job.name,
                holder=self.process.id,
                started_at=outcome.started_at,
                next_run_at=now + (again_in if again_in is not None else every),
                every=every,
                result=dict(outcome.ran.summary) if outcome.ran else {},
                error=outcome.error,
            )
            if not mine:
                logger.warning("job=%s: its run was taken over by another engine", job.name)
            self.ended.pop(0)
