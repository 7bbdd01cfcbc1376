"""Single calls not sent yet: placed for now, or "at" a later time (a reminder at 10:00 tomorrow).
Either way stored with their sensitive values sealed and sent by a worker's task (engine/sends.py)
queued when they were placed; a call placed for later can be canceled until its POST begins.

A task can be lost (a worker killed before it began it, a queue that could not be written): the
schedule's sweep queues again any call still waiting a little past its time, under a lease so it
is queued once a lease. Whichever task comes first sends it; the others find it begun. A worker
that dies after the POST began leaves the call to the sweeper: `unknown`, never sent again."""

from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction

from calls.engine.sends import send_call
from calls.models import CallLog
from calls.models.life import CallLogQuerySet, Mover
from calls.vocabulary import CallStatus

# A call still waiting this long past its time has lost its task, or its worker is far behind.
LOST_AFTER = timedelta(seconds=5)


def waiting_calls() -> CallLogQuerySet:
    """Single calls whose POST has not begun (a campaign's rows wait with their campaign)."""
    return CallLog.objects.filter(
        campaign=None, status=CallStatus.PENDING, submitted_at=None, not_before__isnull=False
    )


def queue_overdue_calls(now: datetime, limit: int = 50) -> int:
    """Queue again the single calls due a while ago whose POST has not begun, each claimed with
    a lease first (so the next sweep leaves it to the task queued now). How many were queued."""
    lease = now + timedelta(seconds=settings.OBD_CLAIM_LEASE_SECONDS)
    with transaction.atomic():
        _, overdue = (
            waiting_calls()
            .filter(not_before__lte=now - LOST_AFTER)
            .only("pk")
            .claim(limit, lease, now, order=("not_before", "id"))
        )
        for call in overdue:
            transaction.on_commit(partial(send_call.enqueue, call.pk), robust=True)
    return len(overdue)


def cancel_scheduled(call: CallLog) -> bool:
    """Withdraw a single call not sent yet; False once its POST began (or it was not one)."""
    moved = (
        waiting_calls()
        .filter(pk=call.pk)
        .move(
            Mover.CANCEL,
            CallStatus.WITHDRAWN,
            error="Canceled before it was sent.",
            sealed_variables="",
            lease_until=None,
        )
    )
    call.refresh_from_db()
    return bool(moved)
