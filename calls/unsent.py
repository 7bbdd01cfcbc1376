"""A campaign's rows that will not be or were not sent, and why, in words for its pages: before
Start, the rows whose calling hours never open (they would be withdrawn on Start) or are closed
now (they wait); after, the withdrawn rows grouped by their reason. Read-only."""

from datetime import datetime
from typing import NamedTuple

from django.db.models import Count, Q

from calls.hours import TRAI_COUNTRY_CODE, TRAI_HOURS
from calls.models import Campaign
from calls.vocabulary import CallStatus


class Unsent(NamedTuple):
    rows: int
    reason: str
    trai: bool = False  # the TRAI hours close them: a transactional campaign would call them


def never_callable(campaign: Campaign, now: datetime) -> list[Unsent]:
    """The rows waiting to be sent whose recipients' calling hours never open, by reason.

    Whether they open depends on a number only through its kind (Indian or not, when the TRAI
    preset applies) and its zone; a zone only moves the calendar, so the first number of each
    kind stands for the rest, and the check costs two queries however many rows there are."""
    waiting = campaign.calls.filter(status=CallStatus.PENDING, submitted_at=None)
    indian = Q(to__startswith=str(TRAI_COUNTRY_CODE))
    found = []
    for kind in (waiting.filter(indian), waiting.exclude(indian)):
        first = kind.order_by("id").values_list("to", flat=True).first()
        if first is None or campaign.opens_for(first, now) is not None:
            continue
        trai = campaign.trai_applies(first) and not campaign.hours_for(first).spans
        found.append(Unsent(kind.count(), _why_never(campaign, first), trai))
    return found


class Closed(NamedTuple):
    rows: int
    indian: bool  # Indian numbers share one zone; the others open each in their own
    opens: datetime  # when the first of them may be called


def closed_now(campaign: Campaign, now: datetime) -> list[Closed]:
    """The rows waiting to be sent whose calling hours are closed at `now` but open later, by
    kind, so the start question says that "starts now" will not call them yet. As in
    `never_callable`, the first number of a kind stands for the rest: exact for Indian numbers
    (one zone); for the others, when the first of them opens (each opens in its own zone)."""
    waiting = campaign.calls.filter(status=CallStatus.PENDING, submitted_at=None)
    indian = Q(to__startswith=str(TRAI_COUNTRY_CODE))
    found = []
    for is_indian, kind in ((True, waiting.filter(indian)), (False, waiting.exclude(indian))):
        first = kind.order_by("id").values_list("to", flat=True).first()
        opens = campaign.opens_for(first, now) if first is not None else None
        if opens is not None and opens > now:
            found.append(Closed(kind.count(), is_indian, opens))
    return found


def _why_never(campaign: Campaign, number: str) -> str:
    if campaign.hours_for(number).spans:
        return "no calling day opens for them within a year (the calling days and holidays)"
    if not campaign.trai_applies(number):
        return f"the calling window {campaign.window_words} is empty"
    start, end = (f"{moment:%H:%M}" for moment in TRAI_HOURS)
    return (
        f"their calling window, {campaign.window_words}, lies outside the TRAI hours for "
        f"promotional calls to Indian numbers ({start}\N{EN DASH}{end})"
    )


def withdrawn_by_reason(campaign: Campaign) -> list[Unsent]:
    """The campaign's withdrawn rows grouped by the reason each was withdrawn, most first."""
    groups = (
        campaign.calls.filter(status=CallStatus.WITHDRAWN)
        .values_list("error")
        .annotate(n=Count("id"))
        .order_by("-n", "error")
    )
    return [Unsent(n, error or "No reason was recorded.") for error, n in groups]
