"""Opt-outs: the provider's unsubscribers list copied onto the do-not-call list, now and then.

Webhook deliveries of `voice:unsubscription` (calls/webhooks.py) and the stop key list numbers as
they come; this pull catches the ones whose delivery never arrived. Adding is idempotent: a
number already listed keeps its entry (and its source).
"""

import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils import timezone

from calls.models import DoNotCall
from calls.phone import normalize_number
from calls.provider.base import Gateway, GatewayError
from calls.provider.configured import get_gateway
from calls.provider.listing import every_row

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OptOutSync:
    read: int  # rows the provider listed
    added: int  # numbers newly put on the do-not-call list
    unreadable: int  # rows without a valid number


def sync_unsubscribers(gateway: Gateway) -> OptOutSync:
    """Read the unsubscribers list, page by page (bounded), and list every number on it.
    GatewayError when the provider cannot be read: the pages already read are kept."""
    read = added = unreadable = 0
    numbers: set[str] = set()
    note = f"provider unsubscribers list, {timezone.now():%Y-%m-%d}"
    try:
        for row in every_row(gateway.unsubscribers):
            read += 1
            try:
                numbers.add(normalize_number(str(row.get("receiver") or ""), region=""))
            except ValidationError:
                unreadable += 1
            if len(numbers) >= 500:  # one INSERT every few pages, not one a number
                added += _list(numbers, note)
    finally:
        added += _list(numbers, note)
    return OptOutSync(read=read, added=added, unreadable=unreadable)


def _list(numbers: set[str], note: str) -> int:
    added = DoNotCall.objects.record_opt_outs(
        numbers, source=DoNotCall.Source.PROVIDER_LIST, note=note
    )
    numbers.clear()
    return added


def sync_optouts() -> dict[str, int]:
    """The periodic pull (calls/engine/jobs.py); a provider that cannot be read is logged and
    tried at the next run."""
    try:
        result = sync_unsubscribers(get_gateway())
    except GatewayError as exc:
        logger.warning("opt-out sync failed: %s", exc)
        return {"read": 0, "added": 0, "unreadable": 0}
    logger.info(
        "opt-out sync read=%s added=%s unreadable=%s", result.read, result.added, result.unreadable
    )
    return {"read": result.read, "added": result.added, "unreadable": result.unreadable}
