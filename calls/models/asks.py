"""Work a person's page waits for, asked of a worker: the page stores the ask and refreshes
itself, a worker claims it once and writes the outcome (SoundUpload, ProviderCheck)."""

from datetime import datetime, timedelta
from typing import Self

from django.db import models

# An ask no worker has claimed this long lost its task (a queue write that failed, a worker
# killed before it began): the page queues another. Safe: nothing was sent yet, and the claim
# lets one task run it.
UNCLAIMED = timedelta(minutes=1)


class WorkerAsk(models.Model):
    """`state` is "pending" until a worker claims the ask, then `RUNNING` (the subclass's word)."""

    PENDING = "pending"
    RUNNING = "running"

    state = models.CharField(max_length=10, default=PENDING)  # given its choices below
    asked_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def in_progress(self) -> bool:
        return self.state in (self.PENDING, self.RUNNING)

    @classmethod
    def claim(cls, pk: int, now: datetime) -> Self | None:
        """The ask to run, for the one worker that moved it from pending (compare-and-set);
        None for any other: a task run twice runs it once."""
        claimed = cls._default_manager.filter(pk=pk, state=cls.PENDING).update(
            state=cls.RUNNING, started_at=now
        )
        return cls._default_manager.get(pk=pk) if claimed else None

    @classmethod
    def ask_again_if_lost(cls, pk: int, now: datetime) -> bool:
        """True when the ask waited unclaimed too long and this visit took it to queue a new
        task (of two visits at once, one: compare-and-set on `asked_at`)."""
        return bool(
            cls._default_manager.filter(
                pk=pk, state=cls.PENDING, asked_at__lt=now - UNCLAIMED
            ).update(asked_at=now)
        )
