"""The callbacks' outbox: an event is recorded, with a delivery for each endpoint that hears its
type, in the same transaction as the change that causes it, so no change is told that did not
happen and none that happened goes untold (the engine sends them later, calls/callbacks/).

One call at each source: a call's outcome applied (`record_outcomes`), a call refused or never
sent (`record_submission_settled`), calls withdrawn (`record_withdrawn`), keys stored (`record_keypresses_received`), a campaign ending
(`record_campaign_finished`), numbers opted out (`record_opted_out`). Nothing is recorded when no
endpoint hears the type. An API key's endpoint hears only of the calls and campaigns made with
that key (a campaign's calls carry its key); a portal-wide one hears of all; a number opted out
is told to both, as it concerns every caller. The models that call these import this module, so it takes them by what
it reads (Protocols) rather than importing them."""

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any, Literal, Protocol

from django.db import connection, transaction

from calls.models.callbacks import (
    CallbackDelivery,
    CallbackEndpoint,
    CallbackEvent,
    EventType,
    new_message_id,
)
from calls.vocabulary import NEVER_RANG, OUTCOMES, CallStatus


class Everyone(Enum):
    """The audience of an event about no call or campaign: every endpoint that hears its type."""

    EVERYONE = "everyone"


EVERYONE: Literal[Everyone.EVERYONE] = Everyone.EVERYONE
# Whose endpoints hear an event: the id of the API key that made its call or campaign (None:
# made in the portal, heard by portal-wide endpoints only), or EVERYONE.
Audience = int | None | Literal[Everyone.EVERYONE]
# One event to record: its type, its data, its ordering key ("" when order does not matter),
# and its audience.
Entry = tuple[EventType, dict[str, Any], str, Audience]


class Placed(Protocol):
    """A call as any event names it (the call model imports this module)."""

    @property
    def pk(self) -> Any: ...
    @property
    def to(self) -> str: ...
    @property
    def campaign_id(self) -> Any: ...
    @property
    def api_key_id(self) -> int | None: ...


class Called(Placed, Protocol):
    """What a call's outcome is told with."""

    @property
    def status(self) -> str: ...
    @property
    def provider_status(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def duration(self) -> int | None: ...
    @property
    def outcome_at(self) -> datetime | None: ...


class Choices(Protocol):
    def choice_words(self, key: str) -> str: ...


class Keyed(Placed, Protocol):
    """What keys pressed are told with."""

    @property
    def flow(self) -> Choices | None: ...


class Ended(Protocol):
    """What a campaign's end is told with (the campaign model imports this module)."""

    pk: Any
    api_key_id: int | None
    name: str
    status: str
    finished_at: datetime | None


def record(entries: Iterable[Entry]) -> int:
    """Record these events for the endpoints that hear them, inside the caller's transaction
    (an atomic block of its own when the caller has none). How many deliveries were made."""
    entries = list(entries)
    if not entries:
        return 0
    endpoints = _enabled()
    wanted = [
        (entry, [e for e in endpoints if e.hears(entry[0]) and _heard_by(e, entry[3])])
        for entry in entries
    ]
    wanted = [(entry, hearing) for entry, hearing in wanted if hearing]
    if not wanted:
        return 0
    with transaction.atomic():
        events = CallbackEvent.objects.bulk_create(
            [
                CallbackEvent(message_id=new_message_id(), type=t, payload=data, ordering_key=key)
                for (t, data, key, _), _ in wanted
            ]
        )
        deliveries = [
            CallbackDelivery(
                endpoint=endpoint,
                event=event,
                next_attempt_at=event.created_at,
                ordering_key=event.ordering_key,
            )
            for event, (_, hearing) in zip(events, wanted, strict=True)
            for endpoint in hearing
        ]
        CallbackDelivery.objects.bulk_create(deliveries)
    return len(deliveries)


def _heard_by(endpoint: CallbackEndpoint, audience: Audience) -> bool:
    return audience is EVERYONE or endpoint.api_key_id is None or endpoint.api_key_id == audience


def _e164(number: str) -> str:
    """A stored number (country code and digits) as other systems write it."""
    return f"+{number}"


def _moment(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _call_data(call: Called, status: str) -> dict[str, Any]:
    return {
        "call_id": call.pk,
        "to": _e164(call.to),
        "campaign_id": call.campaign_id,
        "status": status,
        "provider_status": call.provider_status,
        "attempts": call.attempts,
        "started_at": _moment(call.started_at),
        "ended_at": _moment(call.ended_at),
        "duration": call.duration,
        "outcome_at": _moment(call.outcome_at),
    }


def record_outcomes(calls: Iterable[Called], before: Mapping[int, str]) -> int:
    """The calls whose status an outcome changed (`before`: each one's status until then): each
    is told as answered or not reached, then as settled, in that order."""
    entries: list[Entry] = []
    for call in sorted(calls, key=lambda c: int(c.pk)):
        if call.status == before.get(call.pk) or call.status not in OUTCOMES:
            continue
        data = _call_data(call, call.status)
        answered = call.status == CallStatus.ANSWERED
        kind = EventType.CALL_ANSWERED if answered else EventType.CALL_NOT_REACHED
        entries += [
            (kind, data, f"call:{call.pk}", call.api_key_id),
            (EventType.CALL_SETTLED, data, f"call:{call.pk}", call.api_key_id),
        ]
    return record(entries)


def record_submission_settled(call: Called, written: Mapping[str, object]) -> int:
    """A POST's answer (`written` onto the call) that settles it without an outcome (refused by
    the provider, or never sent) is told as settled; an accepted call waits for its outcome."""
    status = written.get("status")
    if status not in NEVER_RANG:
        return 0
    data = _call_data(call, str(status)) | {"provider_status": written.get("provider_status")}
    return record([(EventType.CALL_SETTLED, data, f"call:{call.pk}", call.api_key_id)])


def heard(event_type: EventType) -> bool:
    """Whether any endpoint hears this type: the calls of a bulk move are read only then."""
    return any(endpoint.hears(event_type) for endpoint in _enabled())


def _enabled() -> list[CallbackEndpoint]:
    """The enabled endpoints. They are read in every batch of outcomes, on SQLite under the one
    write lock, where the ORM building the statement took 0.35 to 0.6 ms and running it 0.09: the
    statement is built once per process and database vendor."""
    sql, params = _enabled_sql(connection.vendor)
    return list(CallbackEndpoint.objects.raw(sql, params))


@cache
def _enabled_sql(vendor: str) -> tuple[str, tuple[Any, ...]]:
    fields = ("pk", "event_types", "enabled", "api_key")
    return CallbackEndpoint.objects.filter(enabled=True).only(*fields).query.sql_with_params()


def record_withdrawn(calls: Iterable[Called]) -> int:
    """Calls withdrawn before they were sent (a campaign stopped or ended, a call placed for
    later canceled, a retry the policy no longer allows): each is told as settled."""
    return record(
        (EventType.CALL_SETTLED, _call_data(call, call.status), f"call:{call.pk}", call.api_key_id)
        for call in sorted(calls, key=lambda c: int(c.pk))
    )


def record_keypresses_received(call: Keyed, keys: str) -> int:
    data = {
        "call_id": call.pk,
        "to": _e164(call.to),
        "campaign_id": call.campaign_id,
        "keys": keys,
        "choices": [call.flow.choice_words(key) for key in keys] if call.flow else [],
    }
    return record([(EventType.KEYPRESS_RECEIVED, data, f"call:{call.pk}", call.api_key_id)])


def record_campaign_finished(campaign: Ended) -> int:
    data = {
        "campaign_id": campaign.pk,
        "name": campaign.name,
        "status": campaign.status,
        "finished_at": _moment(campaign.finished_at),
    }
    key = f"campaign:{campaign.pk}"
    return record([(EventType.CAMPAIGN_FINISHED, data, key, campaign.api_key_id)])


def record_opted_out(numbers: Iterable[str], *, source: str, reason: str) -> int:
    return record(
        (
            EventType.NUMBER_OPTED_OUT,
            {"number": _e164(n), "source": source, "reason": reason},
            "",
            EVERYONE,
        )
        for n in numbers
    )
