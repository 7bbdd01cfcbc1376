"""One submission of one call to one number (CallLog), and its state machine."""

import json
import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models.functions import Reverse
from django.urls import reverse
from django.utils import timezone

from calls.models.catalogue import IvrFlow, Playback
from calls.phone import pretty_number
from calls.provider.base import Gateway, SendResult
from calls.sealing import seal, unseal
from calls.vocabulary import IN_FLIGHT, MASK, OUTCOMES, CallStatus, provider_key, variable_field
from calls.webhooks import Delivery

logger = logging.getLogger(__name__)


class CallLog(Playback):
    """One submission of one call to one number, and what became of it."""

    Status = CallStatus

    to = models.CharField(max_length=20, db_index=True, help_text="e.g. 918867135123")
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
    provider_id = models.CharField(max_length=128, blank=True, db_index=True)
    # The id without the legacy `:n` suffix, so both id forms match with one indexed equality.
    provider_key = models.CharField(max_length=128, blank=True, db_index=True, editable=False)
    cost = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    provider_created_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    provider_status = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True, help_text="When the POST began.")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds, as the provider says."
    )
    recording_url = models.URLField(max_length=1000, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    outcome_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="calls",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    idempotency_key = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    campaign = models.ForeignKey(
        "Campaign", null=True, blank=True, on_delete=models.CASCADE, related_name="calls"
    )
    # A campaign row's sensitive values, encrypted until sent and then wiped (see sealing.py).
    sealed_variables = models.TextField(blank=True, editable=False)

    class Meta(Playback.Meta):
        ordering = ["-id"]
        verbose_name = "call"
        indexes = [
            models.Index(fields=["status", "-id"], name="call_status_id"),
            models.Index(fields=["to", "bridge", "-created_at"], name="call_to_bridge_recent"),
            models.Index(fields=["campaign", "status", "id"], name="call_campaign_status"),
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

    def __str__(self) -> str:
        return f"Call #{self.pk} to {pretty_number(self.to)}"

    def get_absolute_url(self) -> str:
        return reverse("calls:call-detail", args=[self.pk])

    EXPORT_COLUMNS = [
        "id",
        "created_at",
        "to",
        "bridge",
        "flow_id",
        "audio",
        "variables",
        "status",
        "provider_status",
        "provider_id",
        "http_status",
        "cost",
        "started_at",
        "ended_at",
        "duration",
        "attempts",
        "error",
        "campaign_id",
        "placed_by",
    ]

    def export_row(self) -> list:
        """One CSV row; variables exactly as stored, so sensitive values stay masked."""
        return [
            self.pk,
            self.created_at.isoformat(),
            self.to,
            self.bridge.number,
            self.flow.flow_id if self.flow else "",
            self.audio.audio if self.audio else "",
            json.dumps(self.variables, ensure_ascii=False) if self.variables else "",
            self.status,
            self.provider_status,
            self.provider_id,
            self.http_status or "",
            self.cost or "",
            self.started_at.isoformat() if self.started_at else "",
            self.ended_at.isoformat() if self.ended_at else "",
            "" if self.duration is None else self.duration,
            self.attempts,
            self.error,
            self.campaign_id or "",
            self.created_by.get_username() if self.created_by else "",
        ]

    @property
    def is_final(self) -> bool:
        return self.status not in IN_FLIGHT

    @property
    def has_outcome(self) -> bool:
        return self.status in OUTCOMES

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
        **fields,
    ) -> "CallLog":
        """A new pending call with its variables masked and the masked body we will send.
        A campaign row keeps its secrets sealed for the worker; a single call sends them now."""
        call = cls(flow=flow, variables=flow.mask(variables) if flow else {}, **fields)
        call.request_payload = call.provider_payload(call.variables)
        if seal_secrets and flow:
            call.sealed_variables = seal(
                {k: v for k, v in variables.items() if flow.is_sensitive(k)}
            )
        return call

    def provider_payload(self, variables: dict[str, str]) -> dict:
        """The JSON body for outgoing/send, exactly as documented; `variables` are in clear."""
        payload = {"bridge": self.bridge.number, "to": self.to}
        if self.flow is not None:
            payload["flow_id"] = str(self.flow.flow_id)
        else:
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

    def claim(self) -> bool:
        """Mark the row as being sent; only one process ever wins, so no call goes out twice."""
        now = timezone.now()
        won = CallLog.objects.filter(
            pk=self.pk, status=self.Status.PENDING, submitted_at=None
        ).update(submitted_at=now)
        if won:
            self.submitted_at = now
        return bool(won)

    def submit(self, gateway: Gateway, variables: dict[str, str]) -> bool:
        """Send this pending call once. Returns False when another process already sent it."""
        if not self.claim():
            return False
        self.record_submission(gateway.send(self.provider_payload(variables)))
        return True

    def variables_in_clear(self) -> dict[str, str]:
        """The values to send: stored ones, with a campaign row's sealed secrets put back."""
        return {**self.variables, **unseal(self.sealed_variables)}

    def record_submission(self, result: SendResult, sent_at: datetime | None = None) -> None:
        """Store the gateway's answer. `sent_at`: when the POST began, for a row claimed earlier
        in a batch (its claim time is not its send time)."""
        self.submitted_at = sent_at or self.submitted_at
        self.status = result.status
        self.http_status = result.http_status
        self.response_body = result.body
        self.provider_id = result.provider_id
        self.provider_key = provider_key(result.provider_id)
        self.provider_status = result.provider_status
        self.cost = result.cost
        self.provider_created_at = result.created_at
        self.error = result.error
        self.sealed_variables = ""  # sent (or refused): the secrets are no longer needed
        self.save(
            update_fields=[
                "status",
                "http_status",
                "response_body",
                "provider_id",
                "provider_key",
                "provider_status",
                "cost",
                "provider_created_at",
                "error",
                "sealed_variables",
                "submitted_at",
            ]
        )
        # One line per submission; failures at warning level with the reason (never a secret).
        failed = self.status in (self.Status.REJECTED, self.Status.ERROR, self.Status.UNKNOWN)
        logger.log(
            logging.WARNING if failed else logging.INFO,
            "call submission call=%s campaign=%s status=%s http=%s provider_id=%s%s",
            self.pk,
            self.campaign_id or "-",
            self.status,
            self.http_status or "-",
            self.provider_id or "-",
            f" reason={self.error!r}" if failed else "",
        )

    def reopen_for_retry(self) -> bool:
        """An `error` call was never sent, so it may be sent again; anything else may not."""
        reopened = CallLog.objects.filter(pk=self.pk, status=self.Status.ERROR).update(
            status=self.Status.PENDING, submitted_at=None, error=""
        )
        if reopened:
            self.status, self.submitted_at, self.error = self.Status.PENDING, None, ""
        return bool(reopened)

    def apply_outcome(self, delivery: Delivery, *, event_id: int, received_at: datetime) -> None:
        """Record one attempt's outcome. Safe for duplicate, concurrent and out-of-order deliveries:
        the latest attempt by start time decides, and an answered call stays answered.

        The webhook's hot path: one locked read of three columns, one check, one UPDATE."""
        if not delivery.outcome:
            return
        with transaction.atomic():
            call = (
                CallLog.objects.select_for_update()
                .only("status", "started_at", "attempts")
                .get(pk=self.pk)
            )
            if delivery.start_at is None:
                attempts = max(call.attempts, 1)
            else:  # each distinct start time is one attempt (retries with `interval`)
                seen = call.events.filter(started_at=delivery.start_at).exclude(pk=event_id)
                attempts = call.attempts if seen.exists() else call.attempts + 1
            changes = {"attempts": attempts}
            if call._is_decided_by(delivery):
                changes |= {
                    "status": delivery.outcome,
                    "provider_status": delivery.status,
                    "started_at": delivery.start_at,
                    "ended_at": delivery.end_at,
                    "duration": delivery.duration,
                    "recording_url": delivery.recording_url,
                    "outcome_at": received_at,
                }
            CallLog.objects.filter(pk=self.pk).update(**changes)
        for name, value in changes.items():
            setattr(self, name, value)

    def _is_decided_by(self, delivery: Delivery) -> bool:
        if not self.has_outcome:
            return True
        new_start, old_start = delivery.start_at, self.started_at
        later = new_start is None or old_start is None or new_start >= old_start
        if self.status == self.Status.ANSWERED:
            return delivery.outcome == self.Status.ANSWERED and later
        return delivery.outcome == self.Status.ANSWERED or later
