"""Status look-ups recorded through the same ingest path and outcome rules as webhooks."""

from calls.models import CallEvent, CallLog


def reconcile_call(call: CallLog, gateway) -> bool:
    """Ask the provider about one call; True when the answer settled its outcome."""
    body = gateway.call_status(call.provider_id)
    event = CallEvent.objects.ingest(source=CallEvent.Source.RECONCILE, body=body)
    call.refresh_from_db(fields=["status"])
    return event.call_id == call.pk and call.has_outcome
