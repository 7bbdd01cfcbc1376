"""A campaign's progress counted in numbers, not calls: how many of its numbers have been
reached and how many have settled, with retries counted apart. Calls-based shares went backwards
as retries were added (100 → 75 → 88 %); these only ever grow while the campaign runs. Read-only."""

from typing import TypedDict

from django.db.models import Count
from django.db.models.functions import Coalesce

from calls.models import CallLog, Campaign
from calls.vocabulary import IN_FLIGHT, CallStatus


class Reach(TypedDict):
    numbers: int  # first attempts to be sent (withdrawn ones never were)
    settled: int  # of those, with a final state
    percent: int  # settled / numbers: never goes backwards as retries are added
    reached: int  # numbers answered on some attempt
    retries: int  # later attempts made (withdrawn ones aside)
    retries_settled: int
    retries_waiting: int  # not settled yet: waiting, sent, or fate unknown


def reach_of(campaigns: list[Campaign]) -> dict[int, Reach]:
    """The reach of many campaigns in two queries, for the list and a campaign's page."""
    ids = [c.pk for c in campaigns]
    tallies: dict[int, dict[str, int]] = {pk: {} for pk in ids}
    groups = (
        CallLog.objects.filter(campaign__in=ids)
        .exclude(status=CallStatus.WITHDRAWN)
        .values_list("campaign", "status", "attempt_number")
        .annotate(n=Count("id"))
        .order_by()
    )
    for campaign_id, status, attempt, n in groups:
        kind = "first" if attempt == 1 else "retry"
        tally = tallies[campaign_id]
        tally[kind] = tally.get(kind, 0) + n
        if status not in IN_FLIGHT:
            tally[f"{kind}_settled"] = tally.get(f"{kind}_settled", 0) + n
    reached = dict(
        CallLog.objects.filter(campaign__in=ids, status=CallStatus.ANSWERED)
        .values_list("campaign")
        .annotate(n=Count(Coalesce("retry_of", "pk"), distinct=True))
        .order_by()
        .values_list("campaign", "n")
    )
    return {pk: _reach(tallies[pk], reached.get(pk, 0)) for pk in ids}


def _reach(tally: dict[str, int], reached: int) -> Reach:
    numbers, settled = tally.get("first", 0), tally.get("first_settled", 0)
    retries, retries_settled = tally.get("retry", 0), tally.get("retry_settled", 0)
    return {
        "numbers": numbers,
        "settled": settled,
        "percent": 100 * settled // numbers if numbers else 0,
        "reached": reached,
        "retries": retries,
        "retries_settled": retries_settled,
        "retries_waiting": retries - retries_settled,
    }
