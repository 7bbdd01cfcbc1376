"""Single calls placed "at" a later time (a reminder at 10:00 tomorrow): stored with their
sensitive values sealed, like campaign rows, sent by the worker once due, cancellable until
their POST begins. A worker that dies holding one leaves it to the sweeper like a campaign row:
back to the queue if its POST never began, `unknown` (never re-sent) if it may have."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from calls.models import CallLog
from calls.models.calls import CallLogQuerySet, Mover
from calls.provider.base import Gateway, SendResult
from calls.vocabulary import CallStatus


def scheduled_calls() -> CallLogQuerySet:
    """Single calls waiting for their time (campaign rows wait with their campaign)."""
    return CallLog.objects.filter(
        campaign=None, status=CallStatus.PENDING, submitted_at=None, not_before__isnull=False
    )


def send_scheduled_calls(gateway: Gateway, now: datetime, limit: int = 50) -> int:
    """Send the scheduled calls due by `now`, each once (claimed with a lease, then sent through
    `begin_sending`'s compare-and-set). Returns how many were taken."""
    lease = now + timedelta(seconds=settings.OBD_CLAIM_LEASE_SECONDS)
    with transaction.atomic():
        calls = list(
            scheduled_calls()
            .filter(not_before__lte=now)
            .filter(Q(lease_until=None) | Q(lease_until__lt=now))
            .select_for_update(skip_locked=True)
            .order_by("not_before", "id")[:limit]
        )
        CallLog.objects.filter(pk__in=[c.pk for c in calls]).update(lease_until=lease)
    for call in calls:
        call.lease_until = lease
        try:
            variables = call.variables_in_clear()
        except ValueError as exc:
            call.record_submission(SendResult(status=CallStatus.ERROR, error=str(exc)), {})
            continue
        call.submit(gateway, variables)
    return len(calls)


def cancel_scheduled(call: CallLog) -> bool:
    """Withdraw a scheduled call not sent yet; False once its POST began (or it was not one)."""
    moved = (
        scheduled_calls()
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
