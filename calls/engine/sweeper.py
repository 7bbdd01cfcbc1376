"""The sweeper, a periodic job: what a process killed mid-work (or cut off from the database)
leaves behind, healed from the portal's own tables. Being wrong about a slow process is safe:
leases and compare-and-set, not the sweeper's guess, decide who sends a call."""

from datetime import datetime, timedelta

from django.utils import timezone

from calls.engine.dispatch import keep_campaigns_dispatched
from calls.engine.imports import resume_stalled_imports
from calls.models import CallLog, WorkerHeartbeat

# A killed process's beat is kept this long (it shows as stale meanwhile), then dropped.
FORGET_BEATS_AFTER = timedelta(days=1)


def sweep_abandoned_work(now: datetime | None = None) -> dict[str, int]:
    """Rows a dead process held (back to the queue, or `unknown` when their POST may have
    begun), running campaigns whose dispatch tasks died (queued again), CSV imports nobody
    reads any more (queued again, from their last chunk), old beats."""
    now = now or timezone.now()
    requeued, unknown = CallLog.objects.recover_abandoned(now)
    dispatch = keep_campaigns_dispatched(now)
    imports = resume_stalled_imports()
    forgotten, _ = WorkerHeartbeat.objects.filter(beat_at__lt=now - FORGET_BEATS_AFTER).delete()
    return {
        "requeued": requeued,
        "unknown": unknown,
        "dispatch_tasks": dispatch,
        "imports": imports,
        "beats_forgotten": forgotten,
    }
