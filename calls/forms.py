import copy
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import QuerySet, Subquery
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from calls.models import (
    INTERVAL_CHOICES,
    MASK,
    AudioAsset,
    Bridge,
    CallLog,
    Campaign,
    DoNotCall,
    IvrFlow,
)
from calls.phone import normalize_number
from calls.vocabulary import provider_key, variable_field, variable_of

CLOCK_SKEW = timedelta(minutes=5)


class NumberField(forms.CharField):
    """A phone number typed any usual way, cleaned to digits with country code."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("help_text", "With country code, e.g. +91 88671 35123")
        super().__init__(**kwargs)

    def clean(self, value: str) -> str:
        return normalize_number(super().clean(value))


class PlaceCallForm(forms.Form):
    """One call to one number. Field names are the provider's; flow variables arrive as
    `variables[<Name>]` fields, built from the chosen flow's template."""

    bridge = forms.ModelChoiceField(Bridge.objects.filter(is_active=True), empty_label=None)
    to = NumberField(label="To")
    flow = forms.ModelChoiceField(
        IvrFlow.objects.filter(is_active=True),
        required=False,
        label="IVR flow",
        empty_label="— none —",
    )
    audio = forms.ModelChoiceField(
        AudioAsset.objects.filter(is_active=True), required=False, empty_label="— none —"
    )
    name = forms.CharField(
        max_length=100,
        required=False,
        label="Campaign name",
        help_text="Optional, e.g. obd_api_call",
    )
    interval = forms.TypedChoiceField(
        choices=INTERVAL_CHOICES,
        coerce=int,
        initial=0,
        label="Retry interval",
        help_text="Minutes before the provider retries an unanswered call",
    )
    webhook_id = forms.CharField(
        max_length=64,
        required=False,
        label="Webhook id",
        help_text="Optional; the configured default is used when empty",
    )
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4())
        self.chosen_flow = self._chosen_flow()
        for variable, sensitive in self.chosen_flow.variable_specs if self.chosen_flow else []:
            self.fields[variable_field(variable)] = forms.CharField(
                label=variable,
                max_length=200,
                # A sensitive value is never sent back to the browser, even on a form error.
                widget=forms.PasswordInput(attrs={"autocomplete": "off"}) if sensitive else None,
                help_text="Sensitive: masked everywhere after sending" if sensitive else "",
            )

    def _chosen_flow(self) -> IvrFlow | None:
        raw = self.data.get("flow") if self.is_bound else self.initial.get("flow")
        if isinstance(raw, IvrFlow):
            return raw
        if not raw or not str(raw).isdigit():
            return None
        flows = cast("forms.ModelChoiceField[IvrFlow]", self.fields["flow"]).queryset
        return flows.filter(pk=raw).first() if flows is not None else None

    def variable_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if variable_of(name) is not None]

    def variable_values(self, source: Mapping[str, Any] | None = None) -> dict[str, str]:
        source = self.cleaned_data if source is None else source
        return {
            variable: source.get(name, "")
            for name in self.fields
            if (variable := variable_of(name)) is not None
        }

    def preview(self) -> str:
        """The sentence the customer will hear, sensitive values masked."""
        if not self.chosen_flow:
            return ""
        typed = self.variable_values(self.data if self.is_bound else self.initial)
        return self.chosen_flow.render({k: v for k, v in typed.items() if v})

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # Form.clean returns cleaned_data (the stubs allow None)
        if data.get("flow") and data.get("audio"):
            raise forms.ValidationError("Choose an IVR flow or an audio, not both.")
        if not data.get("flow") and not data.get("audio") and not self.has_error("flow"):
            raise forms.ValidationError("Choose an IVR flow or an audio to play.")
        if data.get("to"):
            self._check_number_may_be_called(data["to"])
        return data

    def _check_number_may_be_called(self, number: str) -> None:
        if blocked := DoNotCall.objects.filter(number=number).first():
            why = f" ({blocked.reason})" if blocked.reason else ""
            self.add_error("to", f"This number is on the do-not-call list{why}.")
            return
        limit, minutes = settings.OBD_MAX_CALLS_PER_NUMBER, settings.OBD_MAX_CALLS_WINDOW_MINUTES
        since = timezone.now() - timedelta(minutes=minutes)
        # Count only calls that may have rung: not those refused or never sent.
        rang = CallLog.objects.filter(
            to=number, created_at__gte=since, submitted_at__isnull=False
        ).exclude(status__in=[CallLog.Status.REJECTED, CallLog.Status.ERROR])
        if limit and rang.count() >= limit:
            self.add_error(
                "to",
                f"This number was already called {limit} time(s) in the last {minutes} minutes; "
                "try again later.",
            )

    def save(self, user: User) -> tuple[CallLog, bool]:
        """Store the pending call before anything is sent. The same idempotency key (a double
        click, a resubmitted form) returns the call already stored instead of a second one."""
        data = self.cleaned_data
        existing = CallLog.objects.filter(idempotency_key=data["idempotency_key"]).first()
        if existing:
            return existing, False
        call = CallLog.prepare(
            flow=data.get("flow"),
            variables=self.variable_values(),
            bridge=data["bridge"],
            to=data["to"],
            audio=data.get("audio"),
            name=data["name"],
            interval=data["interval"],
            webhook_id=data["webhook_id"],
            created_by=user,
            idempotency_key=data["idempotency_key"],
        )
        try:
            with transaction.atomic():
                call.save()
        except IntegrityError:  # the same form posted twice at the same instant
            return CallLog.objects.get(idempotency_key=data["idempotency_key"]), False
        return call, True

    @classmethod
    def initial_from(cls, call: CallLog) -> dict[str, Any]:
        """Pre-fill 'place again': everything but the sensitive values, and a new key."""
        initial = {
            "bridge": call.bridge_id,
            "to": "+" + call.to,
            "flow": call.flow,
            "audio": call.audio_id,
            "name": call.name,
            "interval": call.interval,
            "webhook_id": call.webhook_id,
        }
        initial |= {variable_field(k): v for k, v in call.variables.items() if v != MASK}
        return initial


class RetryForm(forms.Form):
    """Re-enter the sensitive values of a call that was never sent: we never stored them."""

    def __init__(self, call: CallLog, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.call = call
        for variable in call.sensitive_variables:
            self.fields[variable_field(variable)] = forms.CharField(
                label=variable,
                max_length=200,
                widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
            )

    def variables(self) -> dict[str, str]:
        clear = {k: self.cleaned_data[variable_field(k)] for k in self.call.sensitive_variables}
        return {k: clear.get(k, v) for k, v in self.call.variables.items()}


class CallFilterForm(forms.Form):
    """The call log's filters; every field optional, bad values ignored rather than failing."""

    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "Number or provider id", "type": "search"}),
    )
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *CallLog.Status.choices]
    )
    bridge = forms.ModelChoiceField(Bridge.objects.all(), required=False, empty_label="Any bridge")
    flow = forms.ModelChoiceField(IvrFlow.objects.all(), required=False, empty_label="Any flow")
    campaign = forms.ModelChoiceField(
        Campaign.objects.all(), required=False, empty_label="Any campaign"
    )
    placed_by: forms.ModelChoiceField[User] = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Anyone", label="Placed by"
    )
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        placed_by = cast("forms.ModelChoiceField[User]", self.fields["placed_by"])
        placed_by.queryset = get_user_model().objects.filter(is_active=True)

    def filter(self, calls: QuerySet[CallLog]) -> QuerySet[CallLog]:
        if not self.is_valid():
            return calls
        data = self.cleaned_data
        if q := data["q"].strip():
            compact = q.replace(" ", "").replace("-", "").removeprefix("+")
            if compact.isdigit():
                try:
                    calls = calls.filter(to=normalize_number(q))
                except ValidationError:  # a partial number: its last digits, as an index range
                    tail = compact[::-1]
                    calls = calls.filter(to_reversed__gte=tail)
                    if after := _next_prefix(tail):
                        calls = calls.filter(to_reversed__lt=after)
            else:
                calls = calls.filter(provider_key=provider_key(q))
        for name, lookup in (
            ("status", "status"),
            ("bridge", "bridge"),
            ("flow", "flow"),
            ("placed_by", "created_by"),
            ("campaign", "campaign"),
        ):
            if data[name]:
                calls = calls.filter(**{lookup: data[name]})
        # Whole days in the portal's time zone. Ids grow with created_at, so the days also become
        # id bounds (found on the created_at index, a few minutes of clock skew allowed): the
        # newest-first page then reads only that stretch of the primary key.
        if data["since"]:
            start = _day_start(data["since"])
            first = CallLog.objects.filter(created_at__gte=start - CLOCK_SKEW).order_by(
                "created_at"
            )
            calls = calls.filter(created_at__gte=start, id__gte=Subquery(first.values("id")[:1]))
        if data["until"]:
            end = _day_start(data["until"] + timedelta(days=1))
            last = CallLog.objects.filter(created_at__lt=end + CLOCK_SKEW).order_by("-created_at")
            calls = calls.filter(created_at__lt=end, id__lte=Subquery(last.values("id")[:1]))
        return calls


def _next_prefix(digits: str) -> str | None:
    """The smallest digit string after every one starting with `digits` ("129" → "13");
    None for all nines, which nothing made of digits comes after."""
    stripped = digits.rstrip("9")
    return stripped[:-1] + str(int(stripped[-1]) + 1) if stripped else None


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class CsvFileField(forms.FileField):
    """An uploaded CSV no larger than OBD_CSV_MAX_BYTES; its content is checked by its importer."""

    default_error_messages = {"required": "Choose a CSV file to upload."}

    def validate(self, value: UploadedFile[bytes] | None) -> None:
        super().validate(value)
        limit = settings.OBD_CSV_MAX_BYTES
        if value is not None and value.size is not None and value.size > limit:
            raise ValidationError(
                "The file is %(size)s; the limit is %(limit)s. Split it into smaller files.",
                code="too_big",
                params={"size": filesizeformat(value.size), "limit": filesizeformat(limit)},
            )


class CampaignForm(forms.ModelForm[Campaign]):
    """A new campaign and its first CSV. Rows are validated on upload, sent only on start."""

    csv_file = CsvFileField(
        label="Numbers (CSV)",
        help_text="A column named number (or to, mobile, phone) and one column per flow variable, "
        "named like the variable. UTF-8, comma or semicolon separated.",
    )

    class Meta:
        model = Campaign
        fields = [
            "name",
            "bridge",
            "flow",
            "audio",
            "interval",
            "webhook_id",
            "pace",
            "window_start",
            "window_end",
            "window_timezone",
        ]
        widgets = {
            "window_start": forms.TimeInput(attrs={"type": "time"}),
            "window_end": forms.TimeInput(attrs={"type": "time"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The same choices, labels and defaults as the single-call form.
        for name in ("bridge", "flow", "audio", "interval"):
            self.fields[name] = copy.deepcopy(PlaceCallForm.base_fields[name])
        self.fields["pace"].initial = settings.OBD_CAMPAIGN_PACE
        self.fields["window_timezone"].initial = settings.OBD_PROVIDER_TIMEZONE
        self.fields["webhook_id"].help_text = "Optional; the configured default is used when empty"

    def clean_window_timezone(self) -> str:
        name: str = self.cleaned_data["window_timezone"]
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(f"{name} is not a time zone, e.g. Asia/Kolkata.") from None
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean()  # flow xor audio: the model's constraint says it, once
        assert data is not None  # ModelForm.clean returns cleaned_data (the stubs allow None)
        if bool(data.get("window_start")) != bool(data.get("window_end")):
            raise forms.ValidationError("Give both ends of the calling window, or neither.")
        return data


class CsvUploadForm(forms.Form):
    csv_file = CampaignForm.base_fields["csv_file"]


class SoundUploadForm(forms.Form):
    """An audio file sent to the provider's Sounds; its id becomes a new audio asset."""

    MAX_BYTES = 10 * 1024 * 1024

    name = forms.CharField(max_length=100, help_text="e.g. Diwali greeting (Hindi)")
    audio_file = forms.FileField(label="Audio file", help_text="MP3 or WAV, up to 10 MB")

    def clean_audio_file(self) -> UploadedFile[bytes]:
        upload: UploadedFile[bytes] = self.cleaned_data["audio_file"]
        if upload.size is None or upload.size > self.MAX_BYTES:
            raise forms.ValidationError("The file is larger than 10 MB.")
        kind = (upload.content_type or "").split(";")[0]
        name = (upload.name or "").lower()
        if not (kind.startswith("audio/") or name.endswith((".mp3", ".wav"))):
            raise forms.ValidationError("Upload an audio file (MP3 or WAV).")
        upload.seek(0)
        sniffed = audio_type(upload.read(12))
        upload.seek(0)
        if sniffed is None:
            raise forms.ValidationError(
                "The file's content is not MP3 or WAV audio, whatever its name says: "
                "export the recording as MP3 or WAV and upload that."
            )
        upload.content_type = sniffed  # the provider is told what the bytes are
        return upload


def audio_type(head: bytes) -> str | None:
    """The audio format a file's first bytes announce, as a MIME type; None when not MP3 or WAV
    (the formats the provider's Sounds accept, so an OGG is refused here rather than there)."""
    if head.startswith(b"ID3"):  # an MP3 with an ID3v2 tag in front
        return "audio/mpeg"
    # An MP3 starting on a frame: 11 sync bits set, and a layer (bits 2-1) that is not reserved.
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "audio/mpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    return None
