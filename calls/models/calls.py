"""One submission of one call to one number (CallLog). Its state machine, and the methods that
move it, are in calls/models/life.py; the send's own moves are here."""

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce, Reverse
from django.urls import reverse
from django.utils import timezone

from calls.models import submissions
from calls.models.api import author_words
from calls.models.bulk import update_where
from calls.models.catalogue import IvrFlow, Playback
from calls.models.life import CallLogQuerySet, Mover, allowed_from
from calls.models.submissions import FailedSubmission
from calls.phone import pretty_number
from calls.provider.base import Payload, SendResult
from calls.sealing import seal, unseal
from calls.vocabulary import (
    MASK,
    MAX_ID,
    OUTCOMES,
    SETTLED,
    CallStatus,
    CampaignStatus,
    provider_words,
    variable_field,
)

logger = logging.getLogger(__name__)
# A campaign's row is sent only while its campaign runs, asked in the send's own UPDATE. EXISTS,
# not a join: `id IN (SELECT …)` is not evaluated again by PostgreSQL's recheck of a row it waited
# for (two winners).
CAMPAIGN_RUNNING = (
    'EXISTS (SELECT 1 FROM "calls_campaign" AS c'
    ' WHERE c."id" = "calls_calllog"."campaign_id" AND c."status" = %s)'
)
# Look-ups of a call's keypresses before giving up (a timeout, a 5xx, an unreadable answer).
KEYPRESS_TRIES = 3


# Where a call stands in the call log: when it was dialled (its POST began) or, not sent yet, when
# it was made. The log pages by it on an index (call_dialled), so a campaign row uploaded long
# ago and dialled now is on top, at any size.
DIALLED_AT = Coalesce("submitted_at", "created_at")


class CallLog(Playback):
    """One submission of one call to one number, and what became of it."""

    Status = CallStatus

    # Indexed by call_to_bridge_recent, which leads with it (as others below lead with theirs):
    # every index is written again on each change of a call's status.
    to = models.CharField(max_length=20, help_text="e.g. 918867135123")
    # The number backwards, indexed, so "calls to numbers ending in 5123" is a range read.
    to_reversed = models.GeneratedField(
        expression=Reverse("to"),
        output_field=models.CharField(max_length=20),
        db_persist=True,
        db_index=True,
    )
    name = models.CharField("campaign name", max_length=100, blank=True)
    variables = models.JSONField(default=dict, blank=True, help_text="Sensitive values masked.")
    request_payload = models.JSONField(
        default=dict, blank=True, help_text="As sent, secrets masked."
    )
    response_body = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    provider_id = models.CharField(max_length=MAX_ID, blank=True)  # looked up by provider_key
    # The id without the legacy `:n` suffix, so both id forms match with one indexed equality.
    provider_key = models.CharField(max_length=MAX_ID, blank=True, db_index=True, editable=False)
    cost = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    provider_created_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    provider_status = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True, help_text="When the POST began.")
    # A campaign row claimed by a dispatcher is its alone until then; a row whose lease ran out
    # before its POST began goes back to the queue (its worker died).
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds, as the provider says."
    )
    recording_url = models.URLField(max_length=1000, blank=True)
    # The keys the customer pressed (the status API's `dtmf`), looked up once after an answer
    # (calls/keypresses.py); `keypresses_at` says when, and stays empty until it is known.
    keypresses = models.CharField(max_length=32, blank=True)
    keypresses_at = models.DateTimeField("keypresses fetched at", null=True, blank=True)
    keypress_tries = models.PositiveSmallIntegerField(default=0, editable=False)
    keypress_retry_at = models.DateTimeField(null=True, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    outcome_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="calls",
        db_index=False,  # call_placed_by_dialled leads with it
    )
    # Placed through the REST API with this key (no person then); a campaign's rows carry their
    # campaign's. Keys are revoked, never deleted, so the record keeps its author.
    api_key = models.ForeignKey(
        "ApiKey", null=True, blank=True, on_delete=models.PROTECT, related_name="calls"
    )
    created_at = models.DateTimeField(default=timezone.now)  # call_dashboard leads with it
    idempotency_key = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    campaign = models.ForeignKey(  # call_campaign_status and call_campaign_dialled lead with it
        "Campaign",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="calls",
        db_index=False,
    )
    # A campaign row's sensitive values, encrypted until sent and then wiped (see sealing.py);
    # kept while a retry may follow, then moved to the retry (see models/retries.py).
    sealed_variables = models.TextField(blank=True, editable=False)
    # Not sent before this instant: a campaign row's calling hours or retry interval, a single
    # call placed "at" a later time. Empty: as soon as possible.
    not_before = models.DateTimeField(null=True, blank=True, editable=False)
    # A retry is a row of its own, linked to the number's first attempt.
    retry_of = models.ForeignKey(  # call_one_attempt leads with it
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="retries",
        db_index=False,
    )
    attempt_number = models.PositiveSmallIntegerField(default=1, editable=False)

    objects = CallLogQuerySet.as_manager()

    class Meta(Playback.Meta):
        ordering = ["-id"]
        verbose_name = "call"
        indexes = [
            models.Index(fields=["status", "-id"], name="call_status_id"),
            models.Index(fields=["to", "bridge", "-created_at"], name="call_to_bridge_recent"),
            models.Index(fields=["campaign", "status", "id"], name="call_campaign_status"),
            # The call log, newest dialled first (ties by id): all calls, and one campaign's.
            models.Index(DIALLED_AT, "id", name="call_dialled"),
            models.Index("campaign", DIALLED_AT, "id", name="call_campaign_dialled"),
            # One catalogue filter, or several (walking one's range, checking the others): calls
            # of a bridge retired long ago are one range away, not a walk back through every call.
            # The other two catalogue columns trail as keys, not INCLUDE: a plain index scan
            # checks keys in the index (Index Cond) and reads only the rows that match, where an
            # INCLUDE column is read only by an index-only scan, which the log's rows never are.
            models.Index(
                "bridge", DIALLED_AT, "id", "flow", "created_by", name="call_bridge_dialled"
            ),
            models.Index(
                "flow", DIALLED_AT, "id", "bridge", "created_by", name="call_flow_dialled"
            ),
            models.Index(
                "created_by", DIALLED_AT, "id", "bridge", "flow", name="call_placed_by_dialled"
            ),
            # The log's filters combined, led by status: rare together though each is broad, so
            # one index range instead of ANDing three bitmaps of 1-7 % of the table each.
            models.Index(
                fields=["status", "bridge", "flow", "created_by"], name="call_status_filters"
            ),
            # Scheduled single calls due: a short list, read by the schedule task.
            models.Index(
                fields=["not_before"],
                condition=models.Q(status="pending", campaign=None, not_before__isnull=False),
                name="call_scheduled",
            ),
            # The keypress look-ups' queue: answered flow calls still to look up (a few).
            models.Index(
                fields=["keypress_retry_at"],
                condition=Q(
                    status=CallStatus.ANSWERED,
                    flow__isnull=False,
                    keypresses_at=None,
                    keypress_tries__lt=KEYPRESS_TRIES,
                ),
                name="call_keypresses_due",
            ),
            # The dashboard reads only these columns: on PostgreSQL an index-only scan.
            models.Index(
                fields=["created_at"],
                include=[
                    "bridge",
                    "flow",
                    "audio",
                    "status",
                    "provider_status",
                    "http_status",
                    "duration",
                    "cost",
                    "submitted_at",
                ],
                name="call_dashboard",
            ),
        ]
        constraints = [
            *Playback.Meta.constraints,
            # A number's n-th attempt exists once, however many workers schedule retries.
            models.UniqueConstraint(fields=["retry_of", "attempt_number"], name="call_one_attempt"),
        ]

    def __str__(self) -> str:
        return f"Call #{self.pk} to {pretty_number(self.to)}"

    @property
    def placed_by(self) -> str:
        return author_words(self.created_by, self.api_key)

    def get_absolute_url(self) -> str:
        return reverse("calls:call-detail", args=[self.pk])

    @property
    def is_settled(self) -> bool:
        return self.status in SETTLED

    @property
    def has_outcome(self) -> bool:
        return self.status in OUTCOMES

    @property
    def keys_awaited(self) -> bool:
        """An answered flow call whose keys are still to be looked up: one row of
        `calls.keypresses.waiting()`, the look-ups' queue, told without a query."""
        return (
            self.status == CallStatus.ANSWERED
            and self.flow_id is not None
            and self.keypresses_at is None
            and self.keypress_tries < KEYPRESS_TRIES
        )

    @property
    def is_scheduled(self) -> bool:
        """A single call placed "at" a later time, its time still to come (it may be canceled)."""
        return (
            self.campaign_id is None
            and self.status == CallStatus.PENDING
            and self.submitted_at is None
            and self.not_before is not None
            and self.not_before > timezone.now()
        )

    @property
    def is_sending(self) -> bool:
        """On its way: a single call due and waiting for its worker, or any call whose POST
        began and whose answer is not recorded yet (a campaign row waiting its turn is not)."""
        if self.status != CallStatus.PENDING:
            return False
        return self.submitted_at is not None or (self.campaign_id is None and not self.is_scheduled)

    @property
    def attempts_allowed(self) -> int:
        """How many attempts the number gets: its campaign's policy (a single call: one)."""
        return self.campaign.max_attempts if self.campaign_id and self.campaign else 1

    @property
    def provider_status_words(self) -> str:
        return provider_words(self.provider_status)

    @property
    def to_display(self) -> str:
        return pretty_number(self.to)

    @property
    def sensitive_variables(self) -> list[str]:
        return [k for k, v in self.variables.items() if v == MASK]

    @property
    def recording_is_valid(self) -> bool:
        """Recording links in webhooks expire two hours after the call ends."""
        ended = self.ended_at or self.outcome_at
        return bool(self.recording_url and ended and timezone.now() - ended < timedelta(hours=2))

    @classmethod
    def prepare(
        cls,
        *,
        flow: IvrFlow | None,
        variables: dict[str, str],
        seal_secrets: bool = False,
        **fields: object,
    ) -> "CallLog":
        """A new pending call with its variables masked and the masked body we will send.
        `seal_secrets`: the sensitive values are typed in clear and kept sealed until a worker
        sends the call (a call from the form, a CSV row); else they are masks already."""
        call = cls(flow=flow, variables=flow.mask(variables) if flow else {}, **fields)
        call.request_payload = call.provider_payload(call.variables)
        if seal_secrets and flow:
            call.sealed_variables = seal(
                {k: v for k, v in variables.items() if flow.is_sensitive(k)}
            )
        return call

    def provider_payload(self, variables: dict[str, str]) -> Payload:
        """The JSON body for outgoing/send, exactly as documented; `variables` are in clear."""
        payload: Payload = {"bridge": self.bridge.number, "to": self.to}
        if self.flow is not None:
            payload["flow_id"] = str(self.flow.flow_id)
        else:
            assert self.audio is not None  # a call plays a flow or an audio (a DB constraint)
            payload["audio"] = self.audio.audio
        if self.name:
            payload["name"] = self.name
        if self.interval:
            payload["interval"] = self.interval
        webhook_id = self.webhook_id or settings.MOBTEXTING_WEBHOOK_ID
        if webhook_id:
            payload["webhook_id"] = webhook_id
        for name, value in variables.items():
            payload[variable_field(name)] = value
        return payload

    def begin_sending(self, now: datetime | None = None, *, campaign_running: bool = False) -> bool:
        """Record that this call's POST begins, once: only the process that wins this
        compare-and-set sends, so no call goes out twice. A campaign row must still hold the
        lease it was claimed with (after it ran out, the row may be another worker's), and with
        `campaign_running` its campaign must be running (a pause or stop holds the very next
        call; asked in the same statement, not one more)."""
        now = now or timezone.now()
        mine = {
            "id": self.pk,
            "status": self.Status.PENDING,
            "submitted_at": None,
            "lease_until": self.lease_until,
        }
        running = (CAMPAIGN_RUNNING, [CampaignStatus.RUNNING]) if campaign_running else ("", [])
        if won := update_where(
            CallLog, mine, {"submitted_at": now}, also=running[0], also_params=running[1]
        ):
            self.submitted_at = now
        return bool(won)

    def variables_in_clear(self) -> dict[str, str]:
        """The values to send: stored ones, with a campaign row's sealed secrets put back."""
        return {**self.variables, **unseal(self.sealed_variables)}

    def record_submission(
        self, result: SendResult, sent: dict[str, str], *, may_retry: bool = False
    ) -> None:
        """Store the gateway's answer: see `submissions.record_submission`."""
        submissions.record_submission(self, result, sent, may_retry=may_retry)

    def reopen_for_retry(self, secrets: dict[str, str] | None = None) -> bool:
        """An `error` call was never sent, so it may be sent again; anything else may not.
        The failed try is kept first (read under the lock, so two retries keep each try once).
        `secrets`: the sensitive values typed again, sealed until the worker sends the call."""
        retryable = allowed_from(Mover.RETRY, CallStatus.PENDING)
        with transaction.atomic():
            tried = (
                CallLog.objects.select_for_update()
                .filter(pk=self.pk, status__in=retryable)
                .only("submitted_at", "http_status", "error")
                .first()
            )
            if tried is None:
                logger.info("call retry refused call=%s: not a call that never left", self.pk)
                return False
            FailedSubmission.objects.create(
                call=tried,
                submitted_at=tried.submitted_at,
                http_status=tried.http_status,
                error=tried.error,
            )
            # Due now (no longer at a time it was placed for): sent by a worker at once.
            reopened = {
                "status": CallStatus.PENDING,
                "submitted_at": None,
                "error": "",
                "http_status": None,
                "not_before": timezone.now(),
                "lease_until": None,
                "sealed_variables": seal(secrets or {}),
            }
            CallLog.objects.filter(pk=self.pk).update(**reopened)
        for name, value in reopened.items():
            setattr(self, name, value)
        return True
