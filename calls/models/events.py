"""One delivery about a call (CallEvent): stored raw first, then matched to its call and applied."""

import hashlib
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone

from calls.models.calls import CallLog
from calls.vocabulary import IN_FLIGHT, provider_key, provider_words
from calls.webhooks import Delivery, MalformedDelivery, parse_delivery

# PostgreSQL text cannot hold NUL: a body is stored with U+FFFD in its place, and flagged.
NUL_STAND_IN = "\ufffd"
NUL_STORED = "NUL bytes in the body, stored as U+FFFD"


class CallEventQuerySet(models.QuerySet["CallEvent"]):
    def ingest(
        self,
        *,
        source: str,
        body: bytes,
        content_type: str = "application/json",
        query: str = "",
        method: str = "POST",
    ) -> "CallEvent":
        """Store a delivery first, then match it to its call and apply its outcome.

        The one path for webhooks, sandbox outcomes and status look-ups. An exact re-delivery
        (same source, method, query and body) is counted on the stored event, not stored again.
        """
        key = hashlib.sha256(f"{source}\n{method}\n{query}\n".encode() + body).hexdigest()
        event = self.model(
            source=source,
            method=method,
            content_type=content_type[:200],
            query=query,
            body=body.decode("utf-8", errors="replace").replace("\x00", NUL_STAND_IN),
            dedupe_key=key,
        )
        delivery = event.read(body)  # the bytes as they came: a non-UTF-8 body is an error
        if b"\x00" in body:
            event.problems = "\n".join(filter(None, [event.problems, NUL_STORED]))
        call = find_call_for(delivery) if delivery else None
        event.call = call
        try:
            with transaction.atomic():
                event.save()  # stored, with its call when known, before any outcome rule runs
        except IntegrityError:
            self.filter(dedupe_key=key).update(deliveries=F("deliveries") + 1)
            event = self.get(dedupe_key=key)
            if call is None or delivery is None:
                return event  # counted; nothing to apply (yet)
            # Applied again: idempotent, and it heals a first delivery whose outcome was lost.
            return event.attach(call, delivery, stored=event.call_id == call.pk)
        if call is not None and delivery is not None:
            event.attach(call, delivery, stored=True)
        return event


class CallEvent(models.Model):
    """One delivery about a call: a webhook, a sandbox outcome or a status look-up. Stored raw."""

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        SANDBOX = "sandbox", "Sandbox"
        RECONCILE = "reconcile", "Status look-up"

    call = models.ForeignKey(
        CallLog, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    source = models.CharField(max_length=16, choices=Source, default=Source.WEBHOOK)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    method = models.CharField(max_length=8, blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    query = models.TextField(blank=True)
    body = models.TextField(blank=True)
    parsed = models.JSONField(default=dict, blank=True)
    parse_error = models.TextField(blank=True)
    problems = models.TextField(
        blank=True, help_text="Values that came but did not fit, so were not applied."
    )
    provider_id = models.CharField(max_length=128, blank=True, db_index=True)
    raw_status = models.CharField(max_length=32, blank=True)
    outcome = models.CharField(max_length=16, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    dedupe_key = models.CharField(max_length=64, unique=True, editable=False)
    deliveries = models.PositiveIntegerField(
        default=1, help_text="How many times this exact delivery came."
    )

    objects = CallEventQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "call event"

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.raw_status or self.parse_error[:30] or '?'} #{self.pk}"

    @property
    def is_matched(self) -> bool:
        return self.call_id is not None

    @property
    def status_words(self) -> str:
        return provider_words(self.raw_status)

    def read(self, raw: bytes | None = None) -> Delivery | None:
        """Parse the delivery and note what it says (or why it cannot be read)."""
        try:
            delivery = parse_delivery(
                content_type=self.content_type,
                body=self.body.encode() if raw is None else raw,
                query=self.query,
                tz=ZoneInfo(settings.OBD_PROVIDER_TIMEZONE),
            )
        except MalformedDelivery as exc:
            self.parse_error = str(exc)
            return None
        self.parsed = delivery.as_json()
        self.problems = "\n".join(delivery.problems)
        self.provider_id = (delivery.ids or [""])[0][:128]
        self.raw_status = delivery.status[:32]
        self.outcome = delivery.outcome
        self.started_at = delivery.start_at
        return delivery

    def match(self, delivery: Delivery | None = None) -> CallLog | None:
        """Attach this event to its call and apply the outcome; None while no call matches."""
        delivery = delivery or self.read()
        call = find_call_for(delivery) if delivery else None
        if call is None or delivery is None:
            return None
        self.attach(call, delivery)
        return call

    def attach(self, call: CallLog, delivery: Delivery, stored: bool = False) -> "CallEvent":
        """Link this event to its call (unless it was stored linked) and apply its outcome."""
        if not stored:
            CallEvent.objects.filter(pk=self.pk).update(call=call)
        self.call = call
        if not call.provider_id and delivery.ids:
            # Found by number after a timeout: learn its id so later deliveries match directly.
            found = delivery.ids[0][:128]
            CallLog.objects.filter(pk=call.pk, provider_id="").update(
                provider_id=found, provider_key=provider_key(found)
            )
        call.apply_outcome(delivery, event_id=self.pk, received_at=self.received_at)
        return self


def find_call_for(delivery: Delivery) -> CallLog | None:
    """By provider id (either id form), else the latest call sent to the same number from the
    same bridge that is still waiting for its outcome and does not know its provider id yet: a
    delivery never lands on a call whose known id differs from its own."""
    calls = CallLog.objects.only("id", "provider_id")
    keys = [provider_key(i) for i in delivery.ids]
    if keys:
        call = calls.filter(provider_key__in=keys).order_by("-id").first()
        if call:
            return call
    if delivery.to and delivery.bridge:
        since = timezone.now() - timedelta(days=1)
        return (
            calls.filter(
                to=delivery.to,
                bridge__number=delivery.bridge,
                status__in=IN_FLIGHT,
                provider_key="",
                submitted_at__gte=since,
            )
            .order_by("-submitted_at")
            .first()
        )
    return None
