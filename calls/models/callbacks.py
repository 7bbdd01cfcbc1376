"""Signed callbacks to other systems: the endpoints an administrator registers, the events the
portal records for them in the same transaction as the change that caused them (the outbox,
calls/models/outbox.py), and each event's delivery to each endpoint with its attempts. The
engine's `callbacks` job sends them (calls/callbacks/delivery.py)."""

import base64
import json
import secrets
import uuid
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from calls.callbacks.addresses import MAX_URL, validate_callback_url
from calls.sealing import seal, unseal

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix the specification gives secrets)


class EventType(models.TextChoices):
    CALL_SETTLED = "call.settled", "call settled (it has its outcome)"
    CALL_ANSWERED = "call.answered", "call answered"
    CALL_NOT_REACHED = "call.not_reached", "call not reached (no answer, busy, failed…)"
    KEYPRESS_RECEIVED = "keypress.received", "keys pressed on a call"
    CAMPAIGN_FINISHED = "campaign.finished", "campaign finished (or canceled)"
    NUMBER_OPTED_OUT = "number.opted_out", "number opted out"


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class CallbackEndpoint(models.Model):
    """A URL that hears of the events it chose, signed with its secret: of one API key's calls
    and campaigns, or (no key) of the whole portal's."""

    # Checked by `clean` (not a field validator, so the migration names no live code).
    url = models.CharField("URL", max_length=MAX_URL, help_text="http(s) only")
    description = models.CharField(max_length=100, blank=True)
    event_types = models.JSONField(default=list, help_text="The events this endpoint hears of")
    api_key = models.ForeignKey(
        "ApiKey",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="callback_endpoints",
        verbose_name="API key",
        help_text="Only the calls and campaigns made with this key. Empty: the whole portal's",
    )
    # The secrets are sealed (calls/sealing.py): shown once, at creation and at each rotation.
    sealed_secret = models.TextField(editable=False)
    # After a rotation the old secret signs too, until it expires, so the receiver can switch.
    sealed_previous_secret = models.TextField(blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    # When its deliveries began to fail (none delivered since); cleared by the next success.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The secret just made, in clear, for the one page that shows it; never saved.
    fresh_secret = ""

    class Meta:
        ordering = ["url", "pk"]
        verbose_name = "callback endpoint"

    def __str__(self) -> str:
        return self.description or self.url

    def clean(self) -> None:
        try:
            validate_callback_url(self.url)
        except ValidationError as error:
            raise ValidationError({"url": error.messages}) from None
        unknown = set(self.event_types) - set(EventType.values)
        if not isinstance(self.event_types, list) or unknown:
            raise ValidationError({"event_types": "Choose from the listed event types."})

    def hears(self, event_type: str) -> bool:
        return self.enabled and event_type in self.event_types

    def set_new_secret(self) -> str:
        """A first secret for a new endpoint; returned to be shown once."""
        self.fresh_secret = new_secret()
        self.sealed_secret = seal({"secret": self.fresh_secret})
        return self.fresh_secret

    def rotate_secret(self, overlap: timedelta, now: datetime | None = None) -> str:
        """A new secret; the current one keeps signing too for `overlap`. Returned to be shown
        once. Under the row lock, so two rotations at once keep a secret that was shown."""
        now = now or timezone.now()
        secret = new_secret()
        with transaction.atomic():
            locked = CallbackEndpoint.objects.select_for_update().get(pk=self.pk)
            self.sealed_previous_secret = locked.sealed_secret
            self.previous_secret_expires_at = now + overlap
            self.sealed_secret = seal({"secret": secret})
            self.save(
                update_fields=[
                    "sealed_secret",
                    "sealed_previous_secret",
                    "previous_secret_expires_at",
                ]
            )
        return secret

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign a delivery now: the current one, and the previous one while its
        overlap lasts."""
        found = [unseal(self.sealed_secret)["secret"]]
        expires = self.previous_secret_expires_at
        if self.sealed_previous_secret and expires and now < expires:
            found.append(unseal(self.sealed_previous_secret)["secret"])
        return found

    def enable(self) -> None:
        CallbackEndpoint.objects.filter(pk=self.pk).update(
            enabled=True, disabled_at=None, disabled_reason="", failing_since=None
        )


class CallbackEvent(models.Model):
    """Something that happened, recorded once with a stable id: every delivery and replay of it
    carries the same `webhook-id`, so a receiver can drop what it already has."""

    # Given when recorded (`new_message_id`).
    message_id = models.CharField(max_length=40, unique=True)
    type = models.CharField(max_length=32, choices=EventType)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    # Events with the same key (one call's) reach each endpoint in the order recorded; "" for
    # events that need no order among themselves.
    ordering_key = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.message_id}"

    def body(self) -> bytes:
        """The JSON posted, as Standard Webhooks lays it out (type, timestamp, data)."""
        document = {
            "type": self.type,
            "timestamp": self.created_at.isoformat(),
            "data": self.payload,
        }
        return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


class CallbackDeliveryQuerySet(models.QuerySet["CallbackDelivery"]):
    def pending(self) -> "CallbackDeliveryQuerySet":
        return self.filter(delivered_at=None, given_up_at=None)

    def replay(self) -> int:
        """Send these again (each with its event's id), now, whatever became of them."""
        return self.update(next_attempt_at=timezone.now(), delivered_at=None, given_up_at=None)

    def due(self, now: datetime) -> "CallbackDeliveryQuerySet":
        """Deliveries to send now, to enabled endpoints, oldest event first; a delivery whose
        endpoint has not yet received (nor given up on) an earlier event with the same ordering
        key waits for it."""
        # One probe of the `callback_order` index per candidate (the key is copied onto the
        # delivery for it: through the event, a backlog made the check quadratic).
        earlier = self.model.objects.pending().filter(
            endpoint=models.OuterRef("endpoint"),
            ordering_key=models.OuterRef("ordering_key"),
            event_id__lt=models.OuterRef("event_id"),
        )
        return (
            self.pending()
            .filter(next_attempt_at__lte=now, endpoint__enabled=True)
            .filter(models.Q(ordering_key="") | ~models.Exists(earlier))
            .order_by("event_id", "pk")
        )


class CallbackDelivery(models.Model):
    """One event for one endpoint: sent until a 2xx, retried with backoff, given up after the
    last attempt (about a day and a quarter after the first)."""

    endpoint = models.ForeignKey(
        CallbackEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(CallbackEvent, on_delete=models.CASCADE, related_name="deliveries")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    given_up_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    ordering_key = models.CharField(max_length=64, blank=True)  # the event's, copied

    objects = CallbackDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-event_id", "pk"]
        verbose_name_plural = "callback deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="callback_once_per_endpoint")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="callback_due",
                condition=models.Q(delivered_at=None, given_up_at=None),
            ),
            models.Index(
                fields=["endpoint", "ordering_key", "event"],
                name="callback_order",
                condition=models.Q(delivered_at=None, given_up_at=None),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"

    @property
    def state(self) -> str:
        if self.delivered_at:
            return "delivered"
        if self.given_up_at:
            return "given up"
        return "waiting"


class CallbackAttempt(models.Model):
    """One POST of a delivery and what came of it: the log an administrator reads."""

    delivery = models.ForeignKey(
        CallbackDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField()
    error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-attempted_at", "-pk"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
