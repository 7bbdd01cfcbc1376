"""Opt-outs: the provider's unsubscribers list copied onto the do-not-call list, now and then.

Every documented shape of its rows is read; a row that cannot be read is never a silent count
(log, /healthz, a supervisor's notice). Webhook deliveries of `voice:unsubscription` (calls/webhooks.py) and the stop key list numbers as
they come; this pull catches the ones whose delivery never arrived. Adding is idempotent: a
number already listed keeps its entry (and its source).
"""

import hashlib
import json
import logging
import re
from dataclasses import dataclass

from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone

from calls.models import DoNotCall, Notice, ProviderListRead
from calls.notifications import tell_supervisors
from calls.provider.base import Gateway, GatewayError
from calls.provider.configured import get_gateway
from calls.provider.listing import ListReader, unsubscriber_number

logger = logging.getLogger(__name__)
# A provider id we can name in a log line and recognise from one sync to the next.
PLAIN_ID = re.compile(r"[\w:.-]{1,64}", re.ASCII)


@dataclass(frozen=True)
class OptOutSync:
    read: int  # rows the provider listed
    added: int  # numbers newly put on the do-not-call list
    unreadable: int  # rows without a valid number in any documented shape


def sync_unsubscribers(gateway: Gateway) -> OptOutSync:
    """Read the unsubscribers list, page by page (bounded), and list every number on it, in
    any documented shape (docs/provider-shapes.md). Rows that cannot be read are logged, kept
    for /healthz and told to the supervisors: an opt-out missed is a customer called against
    their wish. GatewayError when the provider cannot be read: the pages already read are kept."""
    read = added = 0
    numbers: set[str] = set()
    unreadable: list[str] = []  # each unreadable row's mark (see _mark)
    note = f"provider unsubscribers list, {timezone.now():%Y-%m-%d}"
    rows = ListReader(gateway.unsubscribers)
    failed = True
    try:
        for row in rows:
            read += 1
            number = unsubscriber_number(row)
            if number is None:
                unreadable.append(_mark(row))
            else:
                numbers.add(number)
            if len(numbers) >= 500:  # one INSERT every few pages, not one a number
                added += _list(numbers, note)
        failed = False
    finally:
        added += _list(numbers, note)
        unreadable += map(_mark, rows.junk)
        result = OptOutSync(read=read + len(rows.junk), added=added, unreadable=len(unreadable))
        _account(result, unreadable, complete=rows.complete, tell=not failed)
    return result


def _list(numbers: set[str], note: str) -> int:
    added = DoNotCall.objects.record_opt_outs(
        numbers, source=DoNotCall.Source.PROVIDER_LIST, note=note
    )
    numbers.clear()
    return added


def _account(result: OptOutSync, unreadable: list[str], *, complete: bool, tell: bool) -> None:
    """Say what this read found on /healthz; unreadable rows in the log (their ids, never a
    number) and, when `tell`, in a notice to the supervisors, once per distinct set of rows. A
    read the provider broke off is not told: its part of the set would be told again whole."""
    ProviderListRead.objects.note(
        ProviderListRead.Name.UNSUBSCRIBERS,
        rows=result.read,
        unreadable=result.unreadable,
        complete=complete,
    )
    if not unreadable:
        return
    marks = sorted(set(unreadable))
    named = [mark.removeprefix("id:") for mark in marks if mark.startswith("id:")]
    logger.warning(
        "opt-out sync unreadable=%s of read=%s ids=%s",
        result.unreadable,
        result.read,
        ",".join(named[:5]) + (",..." if len(named) > 5 else ""),
    )
    if not tell:
        return
    count = result.unreadable
    title = (
        f"{count} opt-out{pluralize(count)} on the provider's unsubscribers list could not be "
        "read: those customers may still be called. Check the list in the provider's panel "
        "and add the numbers to the do-not-call list."
    )
    problem = hashlib.sha256("\n".join(marks).encode()).hexdigest()
    tell_supervisors(
        Notice.Kind.UNREADABLE_OPTOUTS,
        problem,
        title,
        reverse("admin:calls_donotcall_changelist"),
    )


def _mark(row: object) -> str:
    """The same unreadable row, the same mark from one sync to the next: its provider id, else
    a digest of what it holds."""
    ident = row.get("id") if isinstance(row, dict) else None
    if isinstance(ident, str | int) and PLAIN_ID.fullmatch(str(ident)):
        return f"id:{ident}"
    try:
        text = json.dumps(row, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        text = type(row).__name__
    return "row:" + hashlib.sha256(text.encode()).hexdigest()


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
