"""Status look-ups for calls left without an outcome, recorded through the same ingest path and
outcome rules as webhooks."""

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from calls.models import CallEvent, CallLog
from calls.provider.base import Gateway, GatewayError
from calls.provider.configured import get_gateway
from calls.vocabulary import AWAITING_OUTCOME
from calls.webhooks import MalformedDelivery, provider_time

logger = logging.getLogger(__name__)


def waiting_calls(minutes: int) -> QuerySet[CallLog]:
    cutoff = timezone.now() - timedelta(minutes=minutes)
    return (
        CallLog.objects.filter(status__in=AWAITING_OUTCOME)
        # Sent (a campaign row may be sent days after its upload) that long ago, and three days
        # back at most, so each run asks about a bounded set rather than every call that ever
        # stayed open (the provider keeps its logs 60 days: a person can look there).
        .alias(sent=Coalesce("submitted_at", "created_at"))
        .filter(sent__lt=cutoff, sent__gte=cutoff - timedelta(days=3))
        .select_related("bridge")
    )


def reconcile_call(call: CallLog, gateway: Gateway) -> bool:
    """Ask the provider about one call; True when the answer settled its outcome.

    A call that timed out has no provider id: it is looked up by number, taking the provider's
    row created closest after our submission."""
    if call.provider_id:
        body = gateway.call_status(id=call.provider_id)
        if _no_rows(body):
            return False  # the provider has nothing on it yet: not an event
    else:
        row = _first_row_after(json.loads(gateway.call_status(mobile=call.to)), call)
        if row is None:
            return False
        body = json.dumps({**row, "to": call.to, "bridge": call.bridge.number}).encode()
    event = CallEvent.objects.ingest(source=CallEvent.Source.RECONCILE, body=body)
    call.refresh_from_db(fields=["status"])
    return event.call_id == call.pk and call.has_outcome


def _first_row_after(answer: dict[str, Any], call: CallLog) -> dict[str, Any] | None:
    """The provider's row for this number created first after our POST began (a minute of
    clock skew allowed); earlier rows are other calls to the same customer."""
    zone = ZoneInfo(settings.OBD_PROVIDER_TIMEZONE)
    since = (call.submitted_at or call.created_at) - timedelta(minutes=1)
    candidates: list[tuple[datetime, dict[str, Any]]] = []
    for row in answer.get("data") or []:
        try:
            created = (
                provider_time(str(row.get("created_at") or ""), zone)
                if isinstance(row, dict)
                else None
            )
        except MalformedDelivery:
            continue
        if created and created >= since and _same_bridge(row, call):
            candidates.append((created, row))
    return min(candidates, key=lambda pair: pair[0])[1] if candidates else None


def _no_rows(body: bytes) -> bool:
    try:
        answer = json.loads(body)
    except ValueError:
        return False  # stored as it came, with why it cannot be read
    return isinstance(answer, dict) and answer.get("data") == []


def _same_bridge(row: dict[str, Any], call: CallLog) -> bool:
    """A row from another of our bridges is another call to the same customer."""
    caller = str(row.get("caller_id") or row.get("from") or row.get("bridge") or "")
    return not caller or caller == call.bridge.number


def reconcile_waiting(
    minutes: int,
    gateway: Gateway | None = None,
    report: Callable[[str], object] = logger.warning,
) -> int:
    gateway = gateway or get_gateway()
    if gateway.is_sandbox:
        return 0  # the sandbox always delivers its webhook; it has no status API
    settled = 0
    for call in waiting_calls(minutes).iterator():
        try:
            settled += reconcile_call(call, gateway)
        except (GatewayError, ValueError) as exc:
            report(f"{call}: {exc}")
    return settled
