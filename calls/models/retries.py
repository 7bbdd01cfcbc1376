"""Retries and follow-ups. A retry is a call row of its own, linked to the number's first attempt
(`retry_of`, `attempt_number`), created when the campaign's policy allows it and sent through the
same claims, pace and calling hours as first attempts. The unique (retry_of, attempt_number)
makes each attempt exist once, however many workers schedule retries at once; a number that
answered any attempt, or is on the do-not-call list now, is never called again.

Sensitive values (an OTP) stay sealed on an accepted call while a retry may follow, move to the
retry when it is made, and are wiped once the number's attempts are over."""

import logging
from datetime import datetime, timedelta
from typing import NamedTuple, TypedDict

from django.contrib.auth.models import User
from django.db import IntegrityError, models, transaction
from django.db.models import Exists, OuterRef, Q

from calls.models.calls import CallLog
from calls.models.campaigns import Campaign
from calls.models.life import Mover
from calls.models.records import DoNotCall
from calls.vocabulary import (
    CALL_AGAIN_OUTCOMES,
    CAMPAIGN_ENDED,
    CAMPAIGN_SENDING,
    IN_FLIGHT,
    CallStatus,
)

logger = logging.getLogger(__name__)

ANSWERED_BEFORE = "Not retried: the number answered an earlier attempt."
ON_DO_NOT_CALL = "Not retried: the number is on the do-not-call list now."
SECRETS_GONE = (
    "Not retried: its sensitive values were wiped when its first outcome was unknown, and a "
    "retry must not play masks."
)


class Numbers(TypedDict):
    total: int  # numbers called (first attempts)
    reached: int  # answered on some attempt
    pending_retry: int  # a retry waiting or in flight
    not_reached: int  # every attempt over, none answered
    retries: int  # retry rows, every state


def _chain(root_id: int) -> Q:
    return Q(pk=root_id) | Q(retry_of=root_id)


def _barred(to: str, root_id: int) -> str:
    """Why the number may not be called again; empty when it may."""
    if CallLog.objects.filter(_chain(root_id), status=CallStatus.ANSWERED).exists():
        return ANSWERED_BEFORE
    if DoNotCall.objects.filter(number=to).exists():
        return ON_DO_NOT_CALL
    return ""


def attempt_chain(call: CallLog) -> list[CallLog]:
    """Every attempt at this call's number, first to last (links between them on the call's
    page); empty for a call that is its number's only attempt and may have no other."""
    if call.attempt_number == 1 and call.attempts_allowed == 1:
        return []
    root_id = call.retry_of_id or call.pk
    return list(
        CallLog.objects.filter(_chain(root_id))
        .only("pk", "attempt_number", "status")
        .order_by("attempt_number")
    )


def schedule_retries(campaign: Campaign, now: datetime, limit: int = 500) -> int:
    """Make the next attempt of each call the policy retries, due `retry_minutes` after its
    outcome; returns how many were made. Safe with several workers at once."""
    if campaign.status not in CAMPAIGN_SENDING:
        _wipe_secrets(campaign.calls.all())
        return 0
    made = 0
    if campaign.retries:
        for call in campaign.retry_candidates()[:limit]:
            made += _retry(campaign, call, now)
    # Secrets of calls whose attempts are over (or that no retry follows) are no longer needed.
    _wipe_secrets(campaign.calls.exclude(pk__in=campaign.retry_candidates().values("pk")))
    return made


def wipe_ended_campaigns_secrets() -> int:
    """Sealed secrets left on calls of campaigns that ended (stopped while calls awaited their
    outcomes) are wiped: no retry follows them."""
    return (
        CallLog.objects.exclude(sealed_variables="")
        .filter(campaign__status__in=CAMPAIGN_ENDED)
        .exclude(status=CallStatus.PENDING)
        .update(sealed_variables="")
    )


def _wipe_secrets(calls: "models.QuerySet[CallLog]") -> None:
    calls.exclude(sealed_variables="").exclude(status__in=IN_FLIGHT).update(sealed_variables="")


def _retry(campaign: Campaign, call: CallLog, now: datetime) -> int:
    root_id = call.retry_of_id or call.pk
    attempt = call.attempt_number + 1
    with transaction.atomic():
        # Under the attempt's lock, so its sealed secrets move to one retry only.
        tried = CallLog.objects.select_for_update().filter(pk=call.pk, status=call.status).first()
        if (
            tried is None
            or CallLog.objects.filter(retry_of=root_id, attempt_number=attempt).exists()
        ):
            return 0  # an outcome changed it meanwhile, or another worker made the retry
        retry = campaign.new_row(
            tried.to,
            tried.variables,  # masked: the secrets travel sealed, below
            name=tried.name,
            created_by_id=tried.created_by_id,
            retry_of_id=root_id,
            attempt_number=attempt,
            not_before=(tried.outcome_at or now) + timedelta(minutes=campaign.retry_minutes),
        )
        retry.sealed_variables = tried.sealed_variables
        why = _barred(tried.to, root_id)
        if not why and tried.sensitive_variables and not tried.sealed_variables:
            why = SECRETS_GONE
        try:
            with transaction.atomic():
                retry.save()
        except IntegrityError:  # the same retry, made at the same moment by another worker
            return 0
        if why:  # recorded as an attempt not made, so the number shows why it stopped
            CallLog.objects.filter(pk=retry.pk).move(
                Mover.POLICY, CallStatus.WITHDRAWN, error=why, sealed_variables=""
            )
        CallLog.objects.filter(pk=call.pk).update(sealed_variables="")
    logger.info(
        "campaign=%s call=%s attempt=%s %s",
        campaign.pk,
        root_id,
        attempt,
        f"not retried: {why}" if why else f"retry due {retry.not_before:%Y-%m-%d %H:%M}",
    )
    return 1


def allowed_to_send(calls: list[CallLog]) -> list[CallLog]:
    """Claimed rows still allowed to ring, checked at send time: a retry whose number answered
    an earlier attempt (a late webhook) or joined the do-not-call list since is withdrawn."""
    retries = [c for c in calls if c.attempt_number > 1]
    if not retries:
        return calls
    listed = set(
        DoNotCall.objects.filter(number__in=[c.to for c in retries]).values_list(
            "number", flat=True
        )
    )
    answered = set(
        CallLog.objects.filter(
            pk__in=[c.retry_of_id for c in retries], status=CallStatus.ANSWERED
        ).values_list("pk", flat=True)
    ) | set(
        CallLog.objects.filter(
            retry_of__in=[c.retry_of_id for c in retries], status=CallStatus.ANSWERED
        ).values_list("retry_of", flat=True)
    )
    barred = {}
    for call in retries:
        if call.retry_of_id in answered:
            barred[call.pk] = ANSWERED_BEFORE
        elif call.to in listed:
            barred[call.pk] = ON_DO_NOT_CALL
    for pk, why in barred.items():
        CallLog.objects.filter(pk=pk, submitted_at=None).move(
            Mover.POLICY, CallStatus.WITHDRAWN, error=why, sealed_variables="", lease_until=None
        )
    return [c for c in calls if c.pk not in barred]


def numbers(campaign: Campaign) -> Numbers:
    """The campaign counted in numbers rather than calls: a number is reached when any of its
    attempts was answered."""
    calls = campaign.calls.all()
    total = calls.filter(retry_of=None).count()
    answered_roots = calls.filter(status=CallStatus.ANSWERED).values_list(
        models.functions.Coalesce("retry_of", "pk"), flat=True
    )
    reached = len(set(answered_roots))
    in_flight = calls.filter(status__in=IN_FLIGHT)
    pending_retry = in_flight.filter(attempt_number__gt=1).count()
    open_numbers = in_flight.count()
    return {
        "total": total,
        "reached": reached,
        "pending_retry": pending_retry,
        "not_reached": max(total - reached - open_numbers, 0),
        "retries": calls.filter(attempt_number__gt=1).count(),
    }


def unreached(campaign: Campaign, outcomes: list[str]) -> "models.QuerySet[CallLog]":
    """Each number's last attempt, when it ended on one of `outcomes`, the number never
    answered and is not on the do-not-call list now: whom "call the unanswered again" calls."""
    later = CallLog.objects.filter(
        retry_of=models.functions.Coalesce(OuterRef("retry_of"), OuterRef("pk")),
        attempt_number__gt=OuterRef("attempt_number"),
    )
    answered = CallLog.objects.filter(
        Q(pk=models.functions.Coalesce(OuterRef("retry_of"), OuterRef("pk")))
        | Q(retry_of=models.functions.Coalesce(OuterRef("retry_of"), OuterRef("pk"))),
        status=CallStatus.ANSWERED,
    )
    return (
        campaign.calls.filter(status__in=outcomes)
        .exclude(Exists(later))
        .exclude(Exists(answered))
        .exclude(Exists(DoNotCall.objects.filter(number=OuterRef("to"))))
    )


class CannotCallAgain(Exception):
    """Why a follow-up campaign cannot be made, in words for the page."""


def why_not_again(campaign: Campaign) -> str:
    """Why this campaign's numbers cannot be called again from it, in words; empty when they
    can (asked before the outcomes are picked, and again on confirming)."""
    if not campaign.has_ended:
        return (
            f"The campaign is {campaign.get_status_display().lower()}: its numbers can be "
            "called again once it has finished."
        )
    if campaign.calls.filter(status__in=IN_FLIGHT).exists():
        # A number whose outcome is still coming may yet be answered: calling it again now
        # could ring a customer who already picked up.
        return (
            "Some of its calls still await their outcome: its numbers can be called again "
            "once every outcome is in."
        )
    if campaign.flow and (
        secret := [v for v in campaign.flow.variables if campaign.flow.is_sensitive(v)]
    ):
        return (
            f"The flow's sensitive variable{'s' if len(secret) > 1 else ''} "
            f"({', '.join(secret)}) {'were' if len(secret) > 1 else 'was'} wiped once sent, "
            "so these calls cannot be repeated from here: download the results, add the values "
            "again and upload them in a new campaign."
        )
    if not unreached(campaign, list(CALL_AGAIN_OUTCOMES)).exists():
        return "Nobody is left to call again: every number answered or is on the do-not-call list."
    return ""


def call_again(campaign: Campaign, outcomes: list[str], user: User) -> Campaign:
    """A new draft campaign, linked to this one, calling its unreached numbers again with the
    same content, variables, pace, hours and policy. Sensitive values were wiped once sent,
    so a flow that has them cannot be called again from here."""
    if why := why_not_again(campaign):
        raise CannotCallAgain(why)
    rows = list(unreached(campaign, outcomes).order_by("id"))
    if not rows:
        raise CannotCallAgain("No number ended on those outcomes.")
    copied = {
        field.name: getattr(campaign, field.name)
        for field in Campaign._meta.concrete_fields
        if field.name
        not in {
            "id",
            "name",
            "status",
            "next_send_at",
            "created_by",
            "api_key",
            "created_at",
            "started_at",
            "finished_at",
            "rows_set_aside",
            "follow_up_of",
            "start_at",
            "end_at",
        }
    }
    with transaction.atomic():
        again = Campaign.objects.create(
            **copied,
            name=f"{campaign.name} (again)"[:100],
            follow_up_of=campaign,
            created_by=user,
        )
        CallLog.objects.bulk_create(
            again.new_row(row.to, row.variables, created_by=user) for row in rows
        )
    return again


def eta(campaign: Campaign, now: datetime) -> datetime | None:
    """When a running campaign should be done sending: its rows due at its pace, the last row
    waiting for its hours or retry interval, plus one interval when outcomes may bring retries."""
    if campaign.status != Campaign.Status.RUNNING:
        return None
    waiting = campaign.calls.filter(status=CallStatus.PENDING, submitted_at=None)
    count = waiting.count()
    latest = waiting.aggregate(last=models.Max("not_before"))["last"]
    start = max(campaign.next_send_at or now, now)
    done: datetime = max(start + timedelta(seconds=count / float(campaign.pace)), latest or now)
    if campaign.retries and campaign.retry_candidates(include_in_flight=True).exists():
        done += timedelta(minutes=campaign.retry_minutes)
    return done


class Held(NamedTuple):
    """Rows of a running campaign waiting for their calling hours: how many, when the first may
    go, and how many others are due meanwhile (sent as their turn comes)."""

    waiting: int
    first: datetime | None
    others: int


def held_for_hours(campaigns: list[Campaign], now: datetime) -> dict[int, Held]:
    """For each of `campaigns`, the rows of a running one waiting for their recipients' calling
    hours (or a retry's interval), and when the first of them may go: so a campaign that waits
    says why. One query for them all (the campaigns list has many)."""
    held = {campaign.pk: Held(0, None, 0) for campaign in campaigns}
    running = [campaign for campaign in campaigns if campaign.status == Campaign.Status.RUNNING]
    if not running:
        return held
    later = Q(not_before__gt=now)
    summaries = (
        CallLog.objects.filter(campaign__in=running, status=CallStatus.PENDING, submitted_at=None)
        .values("campaign")
        .annotate(
            n=models.Count("id", filter=later),
            first=models.Min("not_before", filter=later),
            others=models.Count("id", filter=~later),
        )
        .order_by()
    )
    for summary in summaries:
        held[summary["campaign"]] = Held(summary["n"], summary["first"], summary["others"])
    return held
