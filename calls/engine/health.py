"""Whether the background work is being done, for /healthz and the dashboard: each kind of
process with its last beat, and the age of the oldest due work (calls to send, webhook
deliveries to apply, periodic runs overdue). A process that stopped, or that cannot reach the
database (it cannot beat), is reported within STALE; work left waiting longer than LATE is
reported whatever the reason."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Min
from django.utils import timezone

from calls.engine.jobs import JOBS
from calls.engine.processes import DATABASE_ERRORS
from calls.models import CallLog, Campaign, PeriodicJob, ProviderListRead, WorkerHeartbeat
from calls.models.campaigns import about
from calls.models.engine import STALE
from calls.models.events import oldest_waiting
from calls.vocabulary import CallStatus

LATE = timedelta(seconds=60)
ZERO = timedelta(0)


def queues() -> list[str]:
    """The task queues some worker must take (settings.TASKS)."""
    return list(settings.TASKS["default"].get("QUEUES") or ["default"])


@dataclass(frozen=True)
class ProcessKind:
    """The processes of one kind (an engine; the workers taking one queue) as last seen."""

    name: str
    does: str  # what stops when none runs, in words
    running: int  # how many beat within STALE
    last_beat: datetime | None

    def age(self, now: datetime) -> timedelta | None:
        return now - self.last_beat if self.last_beat else None

    @property
    def status(self) -> str:
        return "ok" if self.running else ("stale" if self.last_beat else "missing")

    def problem(self, now: datetime) -> str:
        if self.status == "ok":
            return ""
        if self.last_beat is None:
            # A process stopped on purpose removes its beat: none runs now, whatever ran before.
            return f"No {self.name} is running: {self.does} wait."
        return (
            f"The {self.name} was last seen {how_long(now - self.last_beat)} ago: {self.does} wait."
        )


@dataclass
class Health:
    now: datetime
    database: bool = True
    kinds: list[ProcessKind] = field(default_factory=list)
    calls_waiting: timedelta = ZERO
    deliveries_waiting: timedelta = ZERO
    job_overdue: timedelta = ZERO
    overdue_job: str = ""
    provider: dict[str, dict[str, object]] = field(default_factory=dict)  # its lists' last reads

    @property
    def problems(self) -> list[str]:
        if not self.database:
            return ["The database cannot be reached."]
        found = [kind.problem(self.now) for kind in self.kinds]
        if self.calls_waiting > LATE:
            found.append(f"A call due to be sent has waited {how_long(self.calls_waiting)}.")
        if self.deliveries_waiting > LATE:
            found.append(
                f"Webhook outcomes have waited {how_long(self.deliveries_waiting)} to be applied."
            )
        if self.job_overdue > LATE:
            found.append(
                f"The periodic job “{self.overdue_job}” is {how_long(self.job_overdue)} overdue."
            )
        return [problem for problem in found if problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def seen(self) -> list[str]:
        """Each kind of process as last seen, in words: "the engine: 1 running, seen 1 s ago"."""
        return [
            f"the {kind.name}: {kind.running} running, seen {how_long(age)} ago"
            if (age := kind.age(self.now)) is not None
            else f"the {kind.name}: none running"
            for kind in self.kinds
        ]

    def as_json(self) -> dict[str, object]:
        """/healthz's body. `worker`, `worker_last_beat` and `worker_age_seconds` speak for every
        kind of background process together: its stalest kind."""
        stalest = min(
            self.kinds,
            key=lambda k: k.last_beat or datetime.min.replace(tzinfo=self.now.tzinfo),
            default=None,
        )
        age = stalest.age(self.now) if stalest else None
        return {
            "status": "ok" if self.ok else "failing",
            "database": "ok" if self.database else "unavailable",
            "worker": "ok" if self.kinds and all(k.running for k in self.kinds) else "stale",
            "worker_last_beat": stalest.last_beat if stalest else None,
            "worker_age_seconds": age.total_seconds() if age is not None else None,
            "processes": {
                kind.name: {
                    "status": kind.status,
                    "running": kind.running,
                    "last_beat": kind.last_beat,
                    "age_seconds": seconds(kind.age(self.now)),
                }
                for kind in self.kinds
            },
            "calls_waiting_seconds": self.calls_waiting.total_seconds(),
            "deliveries_waiting_seconds": self.deliveries_waiting.total_seconds(),
            "periodic_overdue_seconds": self.job_overdue.total_seconds(),
            "periodic_overdue_job": self.overdue_job or None,
            # Each provider list's last read: rows that could not be read are never silent.
            "provider": self.provider,
            "problems": self.problems,
        }


def check_health(now: datetime | None = None) -> Health:
    now = now or timezone.now()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        health = Health(now, kinds=process_kinds(now), calls_waiting=calls_waiting(now))
        health.deliveries_waiting = oldest_waiting(now) or ZERO
        health.overdue_job, health.job_overdue = most_overdue(now)
        health.provider = ProviderListRead.objects.health()
    except DATABASE_ERRORS:
        return Health(now, database=False)
    return health


def process_kinds(now: datetime) -> list[ProcessKind]:
    """The engine, and the workers of each queue (extra deliveries appliers are not needed:
    the engine applies deliveries, and deliveries waiting are reported on their own)."""
    beats = list(WorkerHeartbeat.objects.all())

    def kind(name: str, does: str, members: list[WorkerHeartbeat]) -> ProcessKind:
        fresh = [beat for beat in members if beat.beat_at >= now - STALE]
        last = max((beat.beat_at for beat in members), default=None)
        return ProcessKind(name, does, len(fresh), last)

    engines = [beat for beat in beats if beat.kind == WorkerHeartbeat.Kind.ENGINE]
    kinds = [kind("engine", "periodic jobs and webhook outcomes", engines)]
    for queue in queues():
        takers = [b for b in beats if b.kind == WorkerHeartbeat.Kind.WORKER and b.takes(queue)]
        kinds.append(kind(f"worker for the {queue} queue", f"its tasks ({queue})", takers))
    return kinds


def calls_waiting(now: datetime) -> timedelta:
    """How long the call waiting longest past its time has gone unsent: single calls due, and
    running campaigns (in their window) with rows due whose pace no dispatcher keeps."""
    due: datetime | None = CallLog.objects.filter(
        campaign=None, status=CallStatus.PENDING, submitted_at=None, not_before__lte=now
    ).aggregate(first=Min("not_before"))["first"]
    waited = now - due if due else ZERO
    for campaign in Campaign.objects.filter(status=Campaign.Status.RUNNING):
        kept = campaign.next_send_at or campaign.started_at or now
        if kept >= now or not campaign.in_window(now):
            continue  # a dispatcher reserved the next send, or its window is closed
        rows_due = campaign.calls.filter(status=CallStatus.PENDING, submitted_at=None).exclude(
            not_before__gt=now
        )
        if rows_due.exists():
            waited = max(waited, now - kept)
    return waited


def most_overdue(now: datetime) -> tuple[str, timedelta]:
    names = [job.name for job in JOBS]
    late = [(row.overdue(now), row.name) for row in PeriodicJob.objects.filter(name__in=names)]
    overdue, name = max(late, default=(ZERO, ""))
    return (name, overdue) if overdue > ZERO else ("", ZERO)


def how_long(span: timedelta) -> str:
    """ "42 s", or roughly in minutes, hours or days past two minutes."""
    if span < timedelta(minutes=2):
        return f"{round(span.total_seconds())} s"
    return about(span.total_seconds())


def seconds(span: timedelta | None) -> float | None:
    return span.total_seconds() if span is not None else None
