"""The engine's pieces as tests reach them."""

import uuid
from datetime import datetime

from django.utils import timezone

from calls.engine.jobs import JOBS, Job
from calls.models import WorkerHeartbeat


def job(name: str) -> Job:
    """The periodic job called `name`, as the engine runs it."""
    return next(job for job in JOBS if job.name == name)


def beat(kind: str, queues: str = "", at: datetime | None = None) -> WorkerHeartbeat:
    """A background process of `kind` that last beat `at` (now)."""
    at = at or timezone.now()
    return WorkerHeartbeat.objects.create(
        process=f"test-{uuid.uuid4().hex[:12]}",
        kind=kind,
        queues=queues,
        host="test",
        pid=1,
        started_at=at,
        beat_at=at,
    )


def everything_beating(at: datetime | None = None) -> None:
    """An engine and a worker per queue, as `make run` starts them."""
    beat("engine", at=at)
    beat("worker", "default", at=at)
    beat("worker", "campaigns", at=at)
