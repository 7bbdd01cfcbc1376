"""A campaign: one flow or audio sent to many numbers at a shared pace, its row claims, and the
CSV rows that did not become calls."""

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TypedDict

from django.conf import settings
from django.db import models, transaction
from django.db.models import OuterRef, Q
from django.db.models.functions import Coalesce
from django.template.defaultfilters import floatformat, pluralize
from django.urls import reverse
from django.utils import timezone

from calls.models.api import author_words
from calls.models.bulk import update_where
from calls.models.calls import CallLog
from calls.models.catalogue import Playback
from calls.models.life import Mover
from calls.models.outbox import record_campaign_finished
from calls.models.policies import CampaignPolicy
from calls.vocabulary import (
    CAMPAIGN_ENDED,
    CAMPAIGN_MOVING,
    CAMPAIGN_SENDING,
    CAMPAIGN_UNDER_WAY,
    IN_FLIGHT,
    RARE,
    CallStatus,
    CampaignStatus,
)

logger = logging.getLogger(__name__)
# A breaker's count that is not 0: only such a row is written when an answered send resets it.
COUNTING = '"provider_failures" > 0'


class Progress(TypedDict):
    counts: dict[str, int]
    total: int
    to_call: int  # the calls that are or will be sent: all but those withdrawn on cancel
    done: int  # of those, settled
    percent: int
    waiting: int  # not sent yet
    in_flight: int  # not settled yet: waiting, or sent and awaiting their outcome
    awaiting: int  # sent, outcome not known yet
    withdrawn: int
    by_status: list[tuple[str, str, int]]  # status, its label, how many calls
    state: str  # the campaign's state in words, for its badge


def about(seconds: float) -> str:
    """A duration as a person says it roughly: "about 10 minutes"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= 1.5 * size:
            n = round(seconds / size)
            return f"about {n} {unit}{pluralize(n)}"
    n = max(round(seconds), 1)
    return f"about {n} second{pluralize(n)}"


class Campaign(Playback, CampaignPolicy):
    """One flow or audio sent to many numbers from a CSV, at a set pace, in its recipients'
    calling hours, with its retry policy and schedule."""

    Status = CampaignStatus

    # The states each action may be taken from (pages ask before start and stop).
    ACTIONS_FROM = {
        "start": frozenset({Status.DRAFT}),
        "pause": frozenset({Status.RUNNING}),
        "resume": frozenset({Status.PAUSED}),
        "stop": frozenset({Status.DRAFT, Status.SCHEDULED, Status.RUNNING, Status.PAUSED}),
        "unschedule": frozenset({Status.SCHEDULED}),  # back to a draft, to change or drop it
    }
    # The schedule (start and stop times) may be changed until the campaign starts.
    SCHEDULE_FROM = frozenset({Status.DRAFT, Status.SCHEDULED})

    name = models.CharField(max_length=100, help_text="e.g. November payment reminders")
    pace = models.DecimalField(
        max_digits=6, decimal_places=2, help_text="Calls per second for the whole campaign, e.g. 2"
    )
    status = models.CharField(max_length=16, choices=Status, default=Status.DRAFT, db_index=True)
    # [[CSV column, "number" | "{variable}" | "" (ignored)], ...] in the file's order: a list,
    # because PostgreSQL's jsonb does not keep the key order of an object.
    columns = models.JSONField(
        default=list, blank=True, help_text="The upload's columns and their use"
    )
    rows_set_aside = models.PositiveIntegerField(default=0)
    # The token bucket every worker shares: the next instant a call may be sent.
    next_send_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="campaigns",
    )
    # Made through the REST API with this key (no person then); its rows carry it too.
    api_key = models.ForeignKey(
        "ApiKey", null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The circuit breaker: sends in a row the provider left without an answer (timed out,
    # unreachable, 5xx), counted across dispatchers; past the limit the campaign pauses itself
    # and says why here until a person resumes it.
    provider_failures = models.PositiveIntegerField(default=0, editable=False)
    paused_reason = models.CharField(max_length=300, blank=True, editable=False)

    class Meta(Playback.Meta):
        ordering = ["-id"]
        constraints = [
            *Playback.Meta.constraints,
            models.CheckConstraint(condition=Q(pace__gt=0), name="campaign_pace_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def made_by(self) -> str:
        return author_words(self.created_by, self.api_key)

    def get_absolute_url(self) -> str:
        return reverse("calls:campaign-detail", args=[self.pk])

    @property
    def is_moving(self) -> bool:
        """Running or importing: its pages refresh themselves."""
        return self.status in CAMPAIGN_MOVING

    @property
    def is_sending(self) -> bool:
        """Running or paused: started, and rows may still be sent."""
        return self.status in CAMPAIGN_SENDING

    @property
    def has_ended(self) -> bool:
        return self.status in CAMPAIGN_ENDED

    @property
    def may_stop(self) -> bool:
        return self.status in self.ACTIONS_FROM["stop"]

    @property
    def pace_words(self) -> str:
        return f"{floatformat(self.pace, -2)} call{pluralize(self.pace)}/s"

    def sending_time(self, count: int) -> str:
        """Roughly how long `count` calls take at this pace, calling window aside."""
        return about(count / float(self.pace))

    def new_row(
        self, to: str, variables: dict[str, str], *, seal_secrets: bool = False, **fields: object
    ) -> CallLog:
        """A pending call of this campaign to `to`: its content, bridge and options, unsaved."""
        row: dict[str, object] = {
            "bridge": self.bridge,
            "audio": self.audio,
            "name": self.name,
            "interval": self.interval,
            "webhook_id": self.webhook_id,
            "campaign": self,
            "api_key_id": self.api_key_id,
            **fields,
        }
        return CallLog.prepare(
            flow=self.flow, variables=variables, seal_secrets=seal_secrets, to=to, **row
        )

    def progress(self, counts: dict[str, int] | None = None) -> Progress:
        """Counts per call status and the share of calls to be sent that reached a final state
        (withdrawn rows were never to be sent: a stopped draft is not "100 % settled")."""
        if counts is None:
            counts = dict(
                self.calls.values_list("status").annotate(n=models.Count("id")).order_by()
            )
        total = sum(counts.values())
        withdrawn = counts.get(CallStatus.WITHDRAWN, 0)
        to_call = total - withdrawn
        in_flight = sum(n for status, n in counts.items() if status in IN_FLIGHT)
        waiting = counts.get(CallLog.Status.PENDING, 0)
        return {
            "counts": counts,
            "total": total,
            "to_call": to_call,
            "done": to_call - in_flight,
            "percent": round(100 * (to_call - in_flight) / to_call) if to_call else 0,
            "waiting": waiting,
            "in_flight": in_flight,
            "awaiting": in_flight - waiting,
            "withdrawn": withdrawn,
            # Every status in one order; the rare ones only when some call has them.
            "by_status": [
                (status, status.label, counts.get(status, 0))
                for status in CallStatus
                if counts.get(status) or status not in RARE
            ],
            "state": self.state_in_words(to_call, in_flight - waiting),
        }

    def state_in_words(self, to_call: int, awaiting: int) -> str:
        """The status as a person needs it: a finished campaign whose calls still await their
        outcome, a running one waiting for its calling window, a draft stopped unsent."""
        if self.status == self.Status.RUNNING and (opens := self.window_closed_until()):
            return f"Waiting until {opens}"
        if self.status == self.Status.FINISHED and awaiting:
            return f"Sent, {awaiting} awaiting outcome"
        if self.status == self.Status.STOPPED and not to_call:
            return "Stopped before sending"
        if self.status == self.Status.PAUSED and self.paused_reason:
            return "Paused: the provider is not answering"
        return self.get_status_display()

    def first_rows(self, limit: int = 5) -> list[tuple[str, list[str]]]:
        """The first calls waiting to be sent, as the page previews them: the number and the
        flow's variables in its order (sensitive values are stored masked)."""
        names = self.flow.variables if self.flow else []
        calls = self.calls.filter(status=CallStatus.PENDING).order_by("id")[:limit]
        return [(call.to_display, [call.variables.get(n, "") for n in names]) for call in calls]

    @staticmethod
    def progress_of(campaigns: list["Campaign"]) -> dict[int, Progress]:
        """Progress of many campaigns in one query, for the list."""
        counts: dict[int, dict[str, int]] = {c.pk: {} for c in campaigns}
        rows = (
            CallLog.objects.filter(campaign__in=campaigns)
            .values_list("campaign", "status")
            .annotate(n=models.Count("id"))
            .order_by()
        )
        for campaign_id, status, n in rows:
            counts[campaign_id][status] = n
        return {c.pk: c.progress(counts[c.pk]) for c in campaigns}

    def _move(self, allowed_from: frozenset[str], to: str, **extra: object) -> bool:
        """One state change under the row lock; False when the campaign is not in a state that allows it."""
        with transaction.atomic():
            locked = Campaign.objects.select_for_update().get(pk=self.pk)
            if locked.status not in allowed_from:
                return False
            locked.status = to
            for name, value in extra.items():
                setattr(locked, name, value)
            locked.save(update_fields=["status", *extra])
            if to in CAMPAIGN_ENDED:
                record_campaign_finished(locked)
        self.refresh_from_db()
        return True

    def begin_import(self) -> bool:
        """A draft takes more rows from a CSV: it cannot be started until they are all read."""
        return self._move(frozenset({self.Status.DRAFT}), self.Status.IMPORTING)

    def end_import(self, **report: object) -> bool:
        """Its CSV read (with `columns` and `rows_set_aside`), or undone: a draft again."""
        return self._move(frozenset({self.Status.IMPORTING}), self.Status.DRAFT, **report)

    def start(self) -> bool:
        """Start now, or at the campaign's start time when that is still to come."""
        now = timezone.now()
        if self.start_at and self.start_at > now:
            return self._move(self.ACTIONS_FROM["start"], self.Status.SCHEDULED)
        return self._move(self.ACTIONS_FROM["start"], self.Status.RUNNING, started_at=now)

    def begin_if_due(self, now: datetime) -> bool:
        """A scheduled campaign whose start time came starts (the schedule task asks)."""
        if not (self.start_at and self.start_at <= now):
            return False
        return self._move(frozenset({self.Status.SCHEDULED}), self.Status.RUNNING, started_at=now)

    def unschedule(self) -> bool:
        return self._move(self.ACTIONS_FROM["unschedule"], self.Status.DRAFT)

    def reschedule(self, start_at: datetime | None, end_at: datetime | None) -> bool:
        """Change the start and stop times; only before the campaign starts (compare-and-set)."""
        changed = Campaign.objects.filter(pk=self.pk, status__in=self.SCHEDULE_FROM).update(
            start_at=start_at, end_at=end_at
        )
        self.refresh_from_db()
        return bool(changed)

    def end_if_past(self, now: datetime) -> bool:
        """At its stop time a campaign finishes: rows not sent by then are withdrawn, saying
        so. Rows already sent keep their outcomes (and no retry follows them)."""
        if not (self.end_at and self.end_at <= now):
            return False
        ended = self._move(
            CAMPAIGN_UNDER_WAY,
            self.Status.FINISHED,
            finished_at=now,
        )
        if ended:
            self.calls.filter(submitted_at=None).move(
                Mover.POLICY,
                CallStatus.WITHDRAWN,
                error="Not sent: the campaign's end time passed.",
                sealed_variables="",
                lease_until=None,
            )
        return ended

    def pause(self) -> bool:
        return self._move(self.ACTIONS_FROM["pause"], self.Status.PAUSED, paused_reason="")

    def resume(self) -> bool:
        """A person resumes it (after a pause of their own, or one the breaker made)."""
        return self._move(
            self.ACTIONS_FROM["resume"], self.Status.RUNNING, paused_reason="", provider_failures=0
        )

    def note_provider_answer(self, *, silent: bool) -> bool:
        """Count a send the provider left without an answer (`silent`), or start the count
        again after one it answered. True for the one caller whose count paused the campaign
        (`OBD_PAUSE_AFTER_PROVIDER_FAILURES` in a row; 0: never)."""
        if not silent:  # after every answered send: the one statement as plain SQL
            update_where(Campaign, {"id": self.pk}, {"provider_failures": 0}, also=COUNTING)
            return False
        mine = Campaign.objects.filter(pk=self.pk)
        mine.update(provider_failures=models.F("provider_failures") + 1)
        failures = mine.values_list("provider_failures", flat=True).get()
        limit = settings.OBD_PAUSE_AFTER_PROVIDER_FAILURES
        if not limit or failures < limit:
            return False
        reason = (
            f"Paused by itself: the provider left {failures} calls in a row without an answer "
            "(timed out, unreachable or failing). Calls already sent stay unknown until the "
            "provider's status look-up settles them. Resume once the provider answers again."
        )
        return self._move(
            frozenset({self.Status.RUNNING}), self.Status.PAUSED, paused_reason=reason
        )

    def stop(self) -> bool:
        """Stop for good; calls not yet sent are withdrawn and never sent."""
        if not self._move(
            self.ACTIONS_FROM["stop"],
            self.Status.STOPPED,
            finished_at=timezone.now(),
        ):
            return False
        self._withdraw_waiting_rows()
        return True

    def _withdraw_waiting_rows(self) -> None:
        self.calls.filter(submitted_at=None).move(
            Mover.CANCEL,
            CallStatus.WITHDRAWN,
            error="The campaign was stopped before this call was sent.",
            sealed_variables="",
            lease_until=None,
        )

    def release(self, calls: list[CallLog]) -> None:
        """Claimed rows that were not sent go back to the queue (after a 429, a pause, the
        window closing), or are withdrawn with the campaign if it was stopped meanwhile."""
        CallLog.objects.filter(pk__in=[c.pk for c in calls]).release()
        if Campaign.objects.filter(pk=self.pk, status=self.Status.STOPPED).exists():
            self._withdraw_waiting_rows()

    def finish_if_done(self) -> bool:
        """Finished when nothing waits to be sent and no call may still be retried: under a
        retry policy, a call awaiting its outcome, or ended on an outcome retried, keeps the
        campaign running until its retry exists."""
        if self.calls.filter(status=CallLog.Status.PENDING).exists():
            return False
        if self.retries and self.retry_candidates(include_in_flight=True).exists():
            return False
        return self._move(
            frozenset({self.Status.RUNNING}), self.Status.FINISHED, finished_at=timezone.now()
        )

    def take_slots(
        self, now: datetime, count: int, kept_behind: timedelta = timedelta(0)
    ) -> list[datetime]:
        """Reserve the next `count` send instants in the shared token bucket, so the pace holds
        for the campaign as a whole however many workers send. Empty when it is not running.
        A bucket behind `now` by at most `kept_behind` goes on from where it was (sends that go
        together end after their last instant: the pace does not slip by that); further
        behind (paused, idle), it starts again at `now`."""
        with transaction.atomic():
            locked = (
                Campaign.objects.select_for_update()
                .only("status", "pace", "next_send_at")
                .get(pk=self.pk)
            )
            if locked.status != self.Status.RUNNING:
                return []
            gap = timedelta(seconds=1 / float(locked.pace))
            first = locked.next_send_at or now
            if first < now - kept_behind:
                first = now
            Campaign.objects.filter(pk=self.pk).update(next_send_at=first + count * gap)
        return [first + i * gap for i in range(count)]

    def slow_down(self, until: datetime) -> None:
        """The provider asked us to wait (HTTP 429): nobody sends before `until`."""
        Campaign.objects.filter(pk=self.pk, next_send_at__lt=until).update(next_send_at=until)

    def retry_candidates(self, include_in_flight: bool = False) -> "models.QuerySet[CallLog]":
        """Calls whose outcome the policy retries and whose next attempt does not exist yet
        (with `include_in_flight`, also calls whose outcome may still come as such)."""
        outcomes = [*self.retry_on, *(IN_FLIGHT if include_in_flight else ())]
        return (
            self.calls.filter(status__in=outcomes, attempt_number__lt=self.max_attempts)
            .exclude(status=CallStatus.PENDING)
            .exclude(
                models.Exists(
                    CallLog.objects.filter(
                        retry_of=Coalesce(OuterRef("retry_of"), OuterRef("pk")),
                        attempt_number=OuterRef("attempt_number") + 1,
                    )
                )
            )
        )

    def claim_calls(
        self, limit: int, hold: timedelta, due: datetime | None = None
    ) -> list[CallLog]:
        """Take the oldest rows due by `due` (now) for this worker alone, for `hold` (a lease):
        rows another live worker holds are skipped, not waited for; rows whose lease ran out
        before their POST began (their worker died) are free again. A claimed row is sent at
        most once: see `CallLog.begin_sending`.

        A row whose recipient's calling hours are closed is not claimed: it is given the
        instant they open (`not_before`) and skipped cheaply until then, so rows in open hours
        go on (a campaign across zones keeps moving)."""
        now = timezone.now()
        due = due or now
        if self.end_at and due >= self.end_at:
            return []
        claimed: list[CallLog] = []
        due_rows = self.calls.filter(Q(not_before=None) | Q(not_before__lte=due))
        while len(claimed) < limit:
            with transaction.atomic():
                found, ready = due_rows.claim(
                    limit - len(claimed),
                    now + hold,
                    now,
                    keep=lambda rows: self._defer_closed(rows, due),
                )
            if not found:
                break
            claimed += ready
        for call in claimed:  # every row of a campaign plays the campaign's content
            call.bridge, call.flow, call.audio = self.bridge, self.flow, self.audio
        return claimed

    def _defer_closed(self, rows: list[CallLog], due: datetime) -> list[CallLog]:
        """The rows whose recipients may be called at `due`; the others wait for their hours
        to open (or, with no hours ever open, are withdrawn). Under the rows' locks."""
        ready, later = [], defaultdict(list)
        for row in rows:
            opens = self.opens_for(row.to, due)
            if opens == due:
                ready.append(row)
            else:
                later[opens].append(row.pk)
        for opens, ids in later.items():
            if opens is None:
                CallLog.objects.filter(pk__in=ids).move(
                    Mover.POLICY,
                    CallStatus.WITHDRAWN,
                    error="Not sent: the campaign's calling days and hours never open for this "
                    "number.",
                    sealed_variables="",
                )
            else:
                CallLog.objects.filter(pk__in=ids).update(not_before=opens)
        return ready

    def next_due(self, after: datetime) -> datetime | None:
        """When the earliest row waiting past `after` for its hours or retry interval is due."""
        first: datetime | None = self.calls.filter(
            status=CallLog.Status.PENDING, submitted_at=None, not_before__gt=after
        ).aggregate(first=models.Min("not_before"))["first"]
        return first
