"""The catalogue (bridges, flows, audio) and the record of every call we place and hear about."""

import csv
import hashlib
import io
import json
import logging
import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.db.models.functions import Reverse
from django.urls import reverse
from django.utils import timezone

from calls.phone import normalize_number, pretty_number, validate_number
from calls.sealing import seal, unseal
from calls.webhooks import Delivery, MalformedDelivery, parse_delivery

logger = logging.getLogger(__name__)

MASK = "******"
SENSITIVE_HINTS = ("otp", "pin", "code", "password")
# `{Name}` is a variable; `{{Name}}` is a literal brace pair and is not.
VARIABLE_RE = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
INTERVAL_CHOICES = [
    (0, "No retry"),
    (5, "5 minutes"),
    (15, "15 minutes"),
    (30, "30 minutes"),
    (45, "45 minutes"),
    (60, "60 minutes"),
]


class Bridge(models.Model):
    number = models.CharField(
        max_length=20,
        unique=True,
        validators=[validate_number],
        help_text="Caller number with country code, digits only, e.g. 918068287602.",
    )
    label = models.CharField(max_length=100, blank=True, help_text="e.g. Bengaluru support line")
    is_active = models.BooleanField(default=True, help_text="Only active bridges can place calls.")

    class Meta:
        ordering = ["label", "number"]

    def __str__(self) -> str:
        pretty = pretty_number(self.number)
        return f"{self.label} ({pretty})" if self.label else pretty


class IvrFlow(models.Model):
    flow_id = models.CharField(
        "flow id",
        max_length=64,
        unique=True,
        help_text="The journey id from the provider's panel (Engage > Studio), e.g. 23.",
    )
    name = models.CharField(max_length=100, help_text="e.g. Login OTP")
    template = models.TextField(
        blank=True,
        help_text="The journey's text-to-speech, with its variables in braces, "
        "e.g. Hello {Name}, your otp for login is {otp}",
    )
    sensitive_variables = models.CharField(
        max_length=200,
        blank=True,
        help_text="Comma-separated variables to mask besides those named like otp, pin, code or "
        "password, e.g. account_number",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "IVR flow"

    def __str__(self) -> str:
        return f"{self.name} (flow {self.flow_id})"

    @property
    def variables(self) -> list[str]:
        """The template's variable names in order of first use, each once."""
        return list(dict.fromkeys(VARIABLE_RE.findall(self.template)))

    @property
    def variable_specs(self) -> list[tuple[str, bool]]:
        """Each variable with whether it is sensitive, for pages."""
        return [(name, self.is_sensitive(name)) for name in self.variables]

    def is_sensitive(self, variable: str) -> bool:
        extra = {v.strip().lower() for v in self.sensitive_variables.split(",") if v.strip()}
        name = variable.lower()
        return name in extra or any(hint in name for hint in SENSITIVE_HINTS)

    def mask(self, values: dict[str, str]) -> dict[str, str]:
        return {k: MASK if self.is_sensitive(k) else v for k, v in values.items()}

    def render(self, values: dict[str, str]) -> str:
        """The sentence the customer hears, sensitive values masked (it is shown on pages)."""
        shown = self.mask(values)
        return VARIABLE_RE.sub(lambda m: shown.get(m[1]) or f"{{{m[1]}}}", self.template)


class AudioAsset(models.Model):
    name = models.CharField(max_length=100, help_text="e.g. Payment reminder (Hindi)")
    sound_id = models.CharField(
        "sound id",
        max_length=64,
        blank=True,
        help_text="Id of a sound uploaded under Reach > Sounds, "
        "e.g. 39888925-718e-43bb-a8b1-d4a3c0de0001. Leave empty when giving a URL.",
    )
    url = models.URLField(
        "audio URL",
        max_length=500,
        blank=True,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="A public http(s) audio file, e.g. https://cdn.example.com/reminder.mp3. "
        "Leave empty when giving a sound id.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "audio asset"
        constraints = [
            models.CheckConstraint(
                condition=(Q(sound_id="") & ~Q(url="")) | (~Q(sound_id="") & Q(url="")),
                name="audio_has_sound_id_xor_url",
                violation_error_message="Give either a sound id or an audio URL, not both.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def audio(self) -> str:
        """The value the provider's `audio` parameter takes."""
        return self.sound_id or self.url

    def clean(self) -> None:
        if bool(self.sound_id) == bool(self.url):
            message = (
                "Give either a sound id or an audio URL, not both."
                if self.sound_id
                else "Give a sound id or an audio URL."
            )
            raise ValidationError({"sound_id": message, "url": message})


class Playback(models.Model):
    """What a call plays and from where: shared by a single call and a campaign."""

    bridge = models.ForeignKey(Bridge, on_delete=models.PROTECT, related_name="+")
    flow = models.ForeignKey(
        IvrFlow, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    audio = models.ForeignKey(
        AudioAsset, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    interval = models.PositiveSmallIntegerField(default=0, choices=INTERVAL_CHOICES)
    webhook_id = models.CharField(max_length=64, blank=True)

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=Q(flow__isnull=True) ^ Q(audio__isnull=True),
                name="%(class)s_plays_flow_xor_audio",
                violation_error_message="Choose an IVR flow or an audio, exactly one.",
            )
        ]

    @property
    def content(self) -> str:
        return str(self.flow or self.audio)


class CallLog(Playback):
    """One submission of one call to one number, and what became of it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        QUEUED = "queued", "Queued"
        REJECTED = "rejected", "Rejected"
        ERROR = "error", "Not sent"
        UNKNOWN = "unknown", "Unknown"
        ANSWERED = "answered", "Answered"
        NO_ANSWER = "no_answer", "No answer"
        BUSY = "busy", "Busy"
        CANCELED = "canceled", "Canceled"
        FAILED = "failed", "Failed"

    OUTCOMES = frozenset({"answered", "no_answer", "busy", "canceled", "failed"})
    IN_FLIGHT = frozenset({"pending", "queued", "unknown"})

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
        return self.status not in self.IN_FLIGHT

    @property
    def has_outcome(self) -> bool:
        return self.status in self.OUTCOMES

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
            payload[f"variables[{name}]"] = value
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

    def submit(self, gateway, variables: dict[str, str]) -> bool:
        """Send this pending call once. Returns False when another process already sent it."""
        if not self.claim():
            return False
        self.record_submission(gateway.send(self.provider_payload(variables)))
        return True

    def clear_variables(self) -> dict[str, str]:
        """The values to send: stored ones, with a campaign row's sealed secrets put back."""
        return {**self.variables, **unseal(self.sealed_variables)}

    def record_submission(self, result, sent_at: datetime | None = None) -> None:
        """Store the gateway's answer. `sent_at`: when the POST began, for a row claimed earlier
        in a batch (its claim time is not its send time)."""
        self.submitted_at = sent_at or self.submitted_at
        self.status = result.status
        self.http_status = result.http_status
        self.response_body = result.body
        self.provider_id = result.provider_id
        self.provider_key = result.provider_id.split(":")[0]
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

    def apply_outcome(self, delivery, event: "CallEvent") -> None:
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
                seen = call.events.filter(started_at=delivery.start_at).exclude(pk=event.pk)
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
                    "outcome_at": event.received_at,
                }
            CallLog.objects.filter(pk=self.pk).update(**changes)
        for name, value in changes.items():
            setattr(self, name, value)

    def _is_decided_by(self, delivery) -> bool:
        if not self.has_outcome:
            return True
        new_start, old_start = delivery.start_at, self.started_at
        later = new_start is None or old_start is None or new_start >= old_start
        if self.status == self.Status.ANSWERED:
            return delivery.outcome == self.Status.ANSWERED and later
        return delivery.outcome == self.Status.ANSWERED or later


class DoNotCall(models.Model):
    """A number that must never be called: refused by the form, skipped by campaigns."""

    number = models.CharField(
        max_length=20, unique=True, validators=[validate_number], help_text="e.g. 918867135123"
    )
    reason = models.CharField(
        max_length=200, blank=True, help_text="e.g. Customer asked on 2026-11-02"
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "do-not-call number"

    def __str__(self) -> str:
        return pretty_number(self.number)

    @classmethod
    def import_csv(cls, upload, user=None) -> tuple[int, int]:
        """Add the numbers of a CSV (first column, or one named number; optional reason).
        Returns (added, skipped); unreadable, invalid and already listed numbers are skipped."""
        text = io.TextIOWrapper(upload, encoding="utf-8-sig", errors="replace", newline="")
        rows = [row for row in csv.reader(text) if row and any(cell.strip() for cell in row)]
        text.detach()
        lowered = [cell.strip().lower() for cell in rows[0]] if rows else []
        has_header = "number" in lowered
        number_at = lowered.index("number") if has_header else 0
        reason_at = lowered.index("reason") if "reason" in lowered else (None if has_header else 1)
        entries = {}
        for row in rows[has_header:]:
            try:
                number = normalize_number(row[number_at])
            except (ValidationError, IndexError):
                continue
            reason = (
                row[reason_at].strip() if reason_at is not None and reason_at < len(row) else ""
            )
            entries.setdefault(number, cls(number=number, reason=reason[:200], added_by=user))
        before = cls.objects.count()
        cls.objects.bulk_create(
            entries.values(), ignore_conflicts=True
        )  # already listed: kept as is
        added = cls.objects.count() - before
        return added, len(rows) - has_header - added


class Campaign(Playback):
    """One flow or audio sent to many numbers from a CSV, at a set pace, in a calling window."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        FINISHED = "finished", "Finished"
        CANCELED = "canceled", "Canceled"

    name = models.CharField(max_length=100, help_text="e.g. November payment reminders")
    pace = models.DecimalField(
        max_digits=6, decimal_places=2, help_text="Calls per second for the whole campaign, e.g. 2"
    )
    window_start = models.TimeField(
        null=True, blank=True, help_text="Calls wait before this time, e.g. 09:00"
    )
    window_end = models.TimeField(
        null=True, blank=True, help_text="and after this time, e.g. 20:00"
    )
    window_timezone = models.CharField(max_length=64, default="Asia/Kolkata")
    status = models.CharField(max_length=16, choices=Status, default=Status.DRAFT, db_index=True)
    # [[CSV column, "number" | "{variable}" | "" (ignored)], ...] in the file's order: a list,
    # because PostgreSQL's jsonb does not keep the key order of an object.
    columns = models.JSONField(
        default=list, blank=True, help_text="The upload's columns and their use"
    )
    rows_rejected = models.PositiveIntegerField(default=0)
    # The token bucket every worker shares: the next instant a call may be sent.
    next_send_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="campaigns",
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(Playback.Meta):
        ordering = ["-id"]
        constraints = [
            *Playback.Meta.constraints,
            models.CheckConstraint(condition=Q(pace__gt=0), name="campaign_pace_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("calls:campaign-detail", args=[self.pk])

    def progress(self, counts: dict[str, int] | None = None) -> dict:
        """Counts per call status and the share of calls that reached a final state."""
        if counts is None:
            counts = dict(
                self.calls.values_list("status").annotate(n=models.Count("id")).order_by()
            )
        total = sum(counts.values())
        done = sum(n for status, n in counts.items() if status not in CallLog.IN_FLIGHT)
        return {
            "counts": counts,
            "total": total,
            "done": done,
            "percent": round(100 * done / total) if total else 0,
            "waiting": counts.get(CallLog.Status.PENDING, 0),
            "in_flight": total - done,
        }

    @staticmethod
    def progress_of(campaigns: list["Campaign"]) -> dict[int, dict]:
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

    def _move(self, allowed_from: set[str], to: str, **extra) -> bool:
        """One state change under the row lock; False when the campaign is not in a state that allows it."""
        with transaction.atomic():
            locked = Campaign.objects.select_for_update().get(pk=self.pk)
            if locked.status not in allowed_from:
                return False
            locked.status = to
            for name, value in extra.items():
                setattr(locked, name, value)
            locked.save(update_fields=["status", *extra])
        self.refresh_from_db()
        return True

    def start(self) -> bool:
        return self._move({self.Status.DRAFT}, self.Status.RUNNING, started_at=timezone.now())

    def pause(self) -> bool:
        return self._move({self.Status.RUNNING}, self.Status.PAUSED)

    def resume(self) -> bool:
        return self._move({self.Status.PAUSED}, self.Status.RUNNING)

    def cancel(self) -> bool:
        """Stop for good; calls not yet sent are marked canceled and never sent."""
        if not self._move(
            {self.Status.DRAFT, self.Status.RUNNING, self.Status.PAUSED},
            self.Status.CANCELED,
            finished_at=timezone.now(),
        ):
            return False
        self._cancel_waiting_rows()
        return True

    def _cancel_waiting_rows(self) -> None:
        self.calls.filter(status=CallLog.Status.PENDING, submitted_at=None).update(
            status=CallLog.Status.CANCELED,
            error="The campaign was canceled before this call was sent.",
            sealed_variables="",
        )

    def give_back(self, calls: list[CallLog]) -> None:
        """Claimed rows that were not sent go back to the queue (after a 429, a pause, the
        window closing), or are canceled with the campaign if it was canceled meanwhile."""
        CallLog.objects.filter(pk__in=[c.pk for c in calls], status=CallLog.Status.PENDING).update(
            submitted_at=None
        )
        if Campaign.objects.filter(pk=self.pk, status=self.Status.CANCELED).exists():
            self._cancel_waiting_rows()

    def finish_if_done(self) -> bool:
        if self.calls.filter(status=CallLog.Status.PENDING).exists():
            return False
        return self._move({self.Status.RUNNING}, self.Status.FINISHED, finished_at=timezone.now())

    def in_window(self, moment) -> bool:
        if not (self.window_start and self.window_end):
            return True
        local = moment.astimezone(ZoneInfo(self.window_timezone)).time()
        if self.window_start <= self.window_end:
            return self.window_start <= local < self.window_end
        return local >= self.window_start or local < self.window_end  # a window across midnight

    def window_opens_after(self, moment):
        """The next instant the calling window opens after `moment`."""
        zone = ZoneInfo(self.window_timezone)
        local = moment.astimezone(zone)
        opening = local.replace(
            hour=self.window_start.hour, minute=self.window_start.minute, second=0, microsecond=0
        )
        return opening if opening > local else opening + timedelta(days=1)

    def take_slots(self, now, count: int) -> list[datetime]:
        """Reserve the next `count` send instants in the shared token bucket, so the pace holds
        for the campaign as a whole however many workers send. Empty when it is not running."""
        with transaction.atomic():
            locked = (
                Campaign.objects.select_for_update()
                .only("status", "pace", "next_send_at")
                .get(pk=self.pk)
            )
            if locked.status != self.Status.RUNNING:
                return []
            gap = timedelta(seconds=1 / float(locked.pace))
            first = max(locked.next_send_at or now, now)
            Campaign.objects.filter(pk=self.pk).update(next_send_at=first + count * gap)
        return [first + i * gap for i in range(count)]

    def slow_down(self, until) -> None:
        """The provider asked us to wait (HTTP 429): nobody sends before `until`."""
        Campaign.objects.filter(pk=self.pk, next_send_at__lt=until).update(next_send_at=until)

    def claim_calls(self, limit: int) -> list[CallLog]:
        """Take the oldest waiting rows for this worker alone (rows another worker holds are
        skipped, not waited for); a claimed row is never sent twice."""
        now = timezone.now()
        with transaction.atomic():
            calls = list(
                self.calls.filter(status=CallLog.Status.PENDING, submitted_at=None)
                .select_for_update(skip_locked=True)
                .order_by("id")[:limit]
            )
            CallLog.objects.filter(id__in=[c.pk for c in calls]).update(submitted_at=now)
        for call in calls:  # every row of a campaign plays the campaign's content
            call.submitted_at = now
            call.bridge, call.flow, call.audio = self.bridge, self.flow, self.audio
        return calls


class RejectedRow(models.Model):
    """A CSV row that did not become a call, with why; downloadable to fix and upload again."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="rejected_rows")
    line = models.PositiveIntegerField()
    values = models.JSONField(default=dict)
    reason = models.CharField(max_length=300)

    class Meta:
        ordering = ["campaign", "line"]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"

    @property
    def number(self) -> str:
        """The row's number as typed, whatever its column was called."""
        column = next((c for c, target in self.campaign.columns if target == "number"), "")
        return self.values.get(column, "")


class AuditEntry(models.Model):
    """Who did what to a call or a campaign, and when. Catalogue edits are in the admin's log."""

    class Action(models.TextChoices):
        PLACED = "placed", "placed the call"
        RETRIED = "retried", "retried the call"
        CREATED = "created", "created the campaign"
        UPLOADED = "uploaded", "uploaded rows"
        STARTED = "start", "started the campaign"
        PAUSED = "pause", "paused the campaign"
        RESUMED = "resume", "resumed the campaign"
        CANCELED = "cancel", "canceled the campaign"
        SOUND_UPLOADED = "sound_uploaded", "uploaded a sound"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=20, choices=Action)
    call = models.ForeignKey(
        CallLog, null=True, blank=True, on_delete=models.CASCADE, related_name="audit"
    )
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="audit"
    )
    detail = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.get_action_display()}"

    @classmethod
    def record(
        cls, actor, action: str, *, call=None, campaign=None, detail: str = ""
    ) -> "AuditEntry":
        return cls.objects.create(
            actor=actor, action=action, call=call, campaign=campaign, detail=detail[:300]
        )


class WorkerHeartbeat(models.Model):
    """The background worker's last sign of life, for /healthz (one row)."""

    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"worker seen {self.beat_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def beat(cls) -> None:
        cls.objects.update_or_create(pk=1, defaults={"beat_at": timezone.now()})

    @classmethod
    def last(cls):
        return cls.objects.filter(pk=1).values_list("beat_at", flat=True).first()


class CallEventQuerySet(models.QuerySet):
    def unmatched(self):
        return self.filter(call=None, parse_error="").exclude(outcome="")

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
            body=body.decode("utf-8", errors="replace"),
            dedupe_key=key,
        )
        delivery = event.read(body)  # the bytes as they came: a non-UTF-8 body is an error
        call = find_call_for(delivery) if delivery else None
        event.call = call
        try:
            with transaction.atomic():
                event.save()  # stored, with its call when known, before any outcome rule runs
        except IntegrityError:
            self.filter(dedupe_key=key).update(deliveries=F("deliveries") + 1)
            event = self.get(dedupe_key=key)
            if event.is_matched or call is None:
                return event  # counted; its outcome was applied by the first delivery
            return event.attach(call, delivery)
        if call is not None:
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
        self.provider_id = (delivery.ids or [""])[0][:128]
        self.raw_status = delivery.status[:32]
        self.outcome = delivery.outcome
        self.started_at = delivery.start_at
        return delivery

    def match(self, delivery: Delivery | None = None) -> CallLog | None:
        """Attach this event to its call and apply the outcome; None while no call matches."""
        delivery = delivery or self.read()
        call = find_call_for(delivery) if delivery else None
        if call is None:
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
                provider_id=found, provider_key=found.split(":")[0]
            )
        call.apply_outcome(delivery, self)
        return self


def find_call_for(delivery) -> CallLog | None:
    """By provider id (either id form), else the latest call to the same number from the same
    bridge that is still waiting for its outcome."""
    calls = CallLog.objects.only("id", "provider_id")
    keys = [i.split(":")[0] for i in delivery.ids]
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
                status__in=CallLog.IN_FLIGHT,
                created_at__gte=since,
            )
            .order_by("-created_at")
            .first()
        )
    return None
