"""Status look-ups for calls left without an outcome, recorded through the same ingest path and
outcome rules as webhooks."""

import json
import logging
from datetime import timedelta

from django.utils import timezone

from calls.models import CallEvent, CallLog
from calls.provider import GatewayError, get_gateway

logger = logging.getLogger(__name__)


def stuck_pending(minutes: int):
    """Rows claimed for sending that never got an answer recorded: the process died mid-POST."""
    cutoff = timezone.now() - timedelta(minutes=minutes)
    return CallLog.objects.filter(status=CallLog.Status.PENDING, submitted_at__lt=cutoff)


def waiting_calls(minutes: int):
    cutoff = timezone.now() - timedelta(minutes=minutes)
    return CallLog.objects.filter(
        status__in=[CallLog.Status.QUEUED, CallLog.Status.UNKNOWN],
        created_at__lt=cutoff,
        created_at__gte=cutoff - timedelta(days=3),  # the provider keeps call logs for 60 days
    ).select_related("bridge")


def reconcile_call(call: CallLog, gateway) -> bool:
    """Ask the provider about one call; True when the answer settled its outcome.

    A call that timed out has no provider id: it is looked up by number, taking the provider's
    row created closest after our submission."""
    if call.provider_id:
        body = gateway.call_status(id=call.provider_id)
    else:
        answer = json.loads(gateway.call_status(mobile=call.to))
        rows = [r for r in answer.get("data") or [] if isinstance(r, dict)]
        sent = (call.submitted_at or call.created_at).strftime("%Y-%m-%d %H:%M:%S")
        later = sorted(
            (r for r in rows if str(r.get("created_at", "")) >= sent[:16]),
            key=lambda r: str(r.get("created_at")),
        )
        if not later:
            return False
        body = json.dumps({**later[0], "to": call.to, "bridge": call.bridge.number}).encode()
    event = CallEvent.objects.ingest(source=CallEvent.Source.RECONCILE, body=body)
    call.refresh_from_db(fields=["status"])
    return event.call_id == call.pk and call.has_outcome


def reconcile_waiting(minutes: int, gateway=None, report=logger.warning) -> int:
    gateway = gateway or get_gateway()
    if gateway.is_sandbox:
        return 0  # the sandbox always delivers its webhook; it has no status API
    settled = 0
    for call in waiting_calls(minutes).iterator():
        try:
            settled += reconcile_call(call, gateway)
        except (GatewayError, ValueError) as exc:
            report(f"{call}: status look-up failed: {exc}")
    return settled
