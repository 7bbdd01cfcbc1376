"""The engine's own records (calls/engine/): each background process's beat, the periodic
schedule, and the seats a campaign's dispatch tasks hold. Whether work is alive is decided from
these tables alone, never from the task queue library's."""

from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from calls.models.campaigns import Campaign

# A process beats this often; a process, a periodic job's lease or a dispatcher's seat not
# renewed for STALE is presumed dead, and its work is taken over.
BEAT = timedelta(seconds=2)
STALE = timedelta(seconds=10)


class WorkerHeartbeat(models.Model):
    """One background process's last sign of life (a worker, an engine, an extra deliveries
    applier), for /healthz and the dashboard. A process deletes its row when it stops; a killed
    one's row goes stale, and the sweeper drops it a day later."""

    class Kind(models.TextChoices):
        ENGINE = "engine", "engine"
        WORKER = "worker", "worker"
        DELIVERIES = "deliveries", "deliveries applier"

    process = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind)
    queues = models.CharField(max_length=200, blank=True, help_text="A worker's queues (*: all)")
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.kind} {self.process} seen {self.beat_at:%Y-%m-%d %H:%M:%S}"

    def takes(self, queue: str) -> bool:
        """Whether this worker takes tasks from `queue`."""
        queues = self.queues.split(",")
        return "*" in queues or queue in queues


class PeriodicJobQuerySet(models.QuerySet["PeriodicJob"]):
    def due(self, now: datetime) -> "PeriodicJobQuerySet":
        """Runs whose time came and that nobody holds (or whose holder stopped renewing)."""
        return self.filter(next_run_at__lte=now).filter(
            Q(lease_until=None) | Q(lease_until__lt=now)
        )


class PeriodicJob(models.Model):
    """One periodic job on the schedule (calls/engine/jobs.py says what each does and how often).
    An engine takes a due run by compare-and-set and holds it under a lease its beat renews; the
    run's end sets the next one. A lease that runs out (its engine died) frees the run for
    another engine."""

    name = models.CharField(max_length=40, unique=True)
    every = models.DurationField(help_text="As last scheduled (from the settings)")
    next_run_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    holder = models.CharField(max_length=64, blank=True, help_text="The process running it")
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_result = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True)

    objects = PeriodicJobQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def claim(self, holder: str, now: datetime) -> bool:
        """Take this due run, if nobody took it since it was read (compare-and-set on the run
        and the lease as read)."""
        won = PeriodicJob.objects.filter(
            pk=self.pk, next_run_at=self.next_run_at, lease_until=self.lease_until
        ).update(lease_until=now + STALE, holder=holder, last_started_at=now)
        if won:
            self.lease_until, self.holder, self.last_started_at = now + STALE, holder, now
        return bool(won)

    @classmethod
    def finish(
        cls,
        name: str,
        *,
        holder: str,
        started_at: datetime,
        next_run_at: datetime,
        every: timedelta,
        result: dict[str, object],
        error: str,
    ) -> bool:
        """Record the end of the run `holder` started at `started_at` and set the next; False
        when the run was no longer its own (its lease ran out and another engine took it)."""
        return bool(
            cls.objects.filter(name=name, holder=holder, last_started_at=started_at).update(
                next_run_at=next_run_at,
                every=every,
                lease_until=None,
                holder="",
                last_finished_at=timezone.now(),
                last_result=result,
                last_error=error,
            )
        )

    @classmethod
    def renew(cls, holder: str, names: list[str], now: datetime) -> int:
        """Keep the runs `holder` is still busy with: its beat says it is alive."""
        return cls.objects.filter(holder=holder, name__in=names).update(lease_until=now + STALE)

    def overdue(self, now: datetime) -> timedelta:
        """How late the next run is, when nobody runs it; zero while running or not due."""
        running = self.lease_until is not None and self.lease_until >= now
        return timedelta(0) if running else max(now - self.next_run_at, timedelta(0))


class DispatchSeat(models.Model):
    """One of a running campaign's places for a dispatch task (OBD_CAMPAIGN_DISPATCHERS of them):
    the task queued for the seat carries its ticket, and the task running holds the seat under a
    lease it renews (calls/engine/dispatch.py). A seat whose task died (killed, or cut off from
    the database) stops being renewed, and the sweeper queues another task for it; a task whose
    ticket is no longer its seat's does not queue a next one."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="seats")
    number = models.PositiveSmallIntegerField()
    ticket = models.CharField(max_length=32, blank=True)
    task_id = models.CharField(max_length=64, blank=True, help_text="The queued task's result id")
    queued_at = models.DateTimeField()
    held_until = models.DateTimeField(null=True, blank=True, help_text="Empty: queued, not taken")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="seat_once_a_campaign")
        ]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} seat {self.number}"

    def keep(self, ticket: str, now: datetime) -> bool:
        """Hold the seat (or renew the lease) for the task with `ticket`; False when the seat
        was given to another task."""
        until = now + STALE
        kept = DispatchSeat.objects.filter(pk=self.pk, ticket=ticket).update(held_until=until)
        if kept:
            self.held_until = until
        return bool(kept)

    def leave(self, ticket: str) -> None:
        """The task with `ticket` ends its campaign's dispatch: its seat is given up."""
        DispatchSeat.objects.filter(pk=self.pk, ticket=ticket).delete()
