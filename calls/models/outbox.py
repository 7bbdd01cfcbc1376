"""The callbacks' outbox: an event is recorded, with a delivery for each endpoint that hears its
type, in the same transaction as the change that causes it, so no change is told that did not
happen and none that happened goes untold (the engine sends them later, calls/callbacks/).

One call at each source: a call's outcome applied (`record_outcomes`), keys stored
(`record_keypresses_received`), a campaign ending (`record_campaign_finished`), numbers opted out
(`record_opted_out`). Nothing is recorded when no endpoint hears the type."""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from django.db import transaction

from calls.models.callbacks import (
    CallbackDelivery,
    CallbackEndpoint,
    CallbackEvent,
    EventType,
    new_message_id,
)
from calls.models.calls import CallLog
from calls.vocabulary import OUTCOMES, CallStatus

# One event to record: its type, its data, and its ordering key ("" when order does not matter).
Entry = tuple[EventType, dict[str, Any], str]


class Ended(Protocol):
    """What a campaign's end is told with (the campaign model imports this module)."""

    pk: Any
    name: str
    status: str
    finished_at: datetime | None


def record(entries: Iterable[Entry]) -> int:
    """Record these events for the endpoints that hear them, inside the caller's transaction
    (an atomic block of its own when the caller has none). How many deliveries were made."""
    entries = list(entries)
    if not entries:
        return 0
    endpoints = list(
        CallbackEndpoint.objects.filter(enabled=True).only("pk", "event_types", "enabled")
    )
    wanted = [(entry, [e for e in endpoints if e.hears(entry[0])]) for entry in entries]
    wanted = [(entry, hearing) for entry, hearing in wanted if hearing]
    if not wanted:
        return 0
    with transaction.atomic():
        events = CallbackEvent.objects.bulk_create(
            [
                CallbackEvent(message_id=new_message_id(), type=t, payload=data, ordering_key=key)
                for (t, data, key), _ in wanted
            ]
        )
        deliveries = [
            CallbackDelivery(endpoint=endpoint, event=event, next_attempt_at=event.created_at)
            for event, (_, hearing) in zip(events, wanted, strict=True)
            for endpoint in hearing
        ]
        CallbackDelivery.objects.bulk_create(deliveries)
    return len(deliveries)


def _e164(number: str) -> str:
    """A stored number (country code and digits) as other systems write it."""
    return f"+{number}"


def _moment(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def record_outcomes(calls: Iterable[CallLog], before: Mapping[int, str]) -> int:
    """The calls whose status an outcome changed (`before`: each one's status until then): each
    is told as answered or not reached, then as settled, in that order."""
    changed = {c.pk: c for c in calls if c.status != before.get(c.pk) and c.status in OUTCOMES}
    if not changed:
        return 0
    # The batch read only the outcome's columns; the rest in one read.
    rest = {
        pk: (to, campaign_id)
        for pk, to, campaign_id in CallLog.objects.filter(pk__in=changed).values_list(
            "pk", "to", "campaign_id"
        )
    }
    entries: list[Entry] = []
    for pk, call in sorted(changed.items()):
        to, campaign_id = rest[pk]
        data = {
            "call_id": pk,
            "to": _e164(to),
            "campaign_id": campaign_id,
            "status": call.status,
            "provider_status": call.provider_status,
            "attempts": call.attempts,
            "started_at": _moment(call.started_at),
            "ended_at": _moment(call.ended_at),
            "duration": call.duration,
            "outcome_at": _moment(call.outcome_at),
        }
        answered = call.status == CallStatus.ANSWERED
        kind = EventType.CALL_ANSWERED if answered else EventType.CALL_NOT_REACHED
        entries += [(kind, data, f"call:{pk}"), (EventType.CALL_SETTLED, data, f"call:{pk}")]
    return record(entries)


def record_keypresses_received(call: CallLog, keys: str) -> int:
    data = {
        "call_id": call.pk,
        "to": _e164(call.to),
        "campaign_id": call.campaign_id,
        "keys": keys,
        "choices": [call.flow.choice_words(key) for key in keys] if call.flow else [],
    }
    return record([(EventType.KEYPRESS_RECEIVED, data, f"call:{call.pk}")])


def record_campaign_finished(campaign: Ended) -> int:
    data = {
        "campaign_id": campaign.pk,
        "name": campaign.name,
        "status": campaign.status,
        "finished_at": _moment(campaign.finished_at),
    }
    return record([(EventType.CAMPAIGN_FINISHED, data, f"campaign:{campaign.pk}")])


def record_opted_out(numbers: Iterable[str], *, source: str, reason: str) -> int:
    return record(
        (EventType.NUMBER_OPTED_OUT, {"number": _e164(n), "source": source, "reason": reason}, "")
        for n in numbers
    )
