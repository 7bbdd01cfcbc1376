"""Placing a call and retrying one that never left."""

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, cast
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.urls import reverse_lazy
from django.utils import timezone

from calls.forms.fields import NumberField
from calls.http import id_in
from calls.models import (
    INTERVAL_CHOICES,
    MASK,
    ApiKey,
    AudioAsset,
    Bridge,
    CallLog,
    DoNotCall,
    IvrFlow,
)
from calls.models.calls import DIALLED_AT
from calls.phone import normalize_number
from calls.vocabulary import NEVER_RANG, variable_field, variable_of

# Neither a flow nor an audio, or both: said at the top and beside the fields (code "play").
PLAY_ERRORS = {
    False: "Choose an IVR flow or an audio to play.",
    True: "Choose an IVR flow or an audio, not both.",
}

# How far ahead a single call may be placed: a reminder, not a campaign.
SCHEDULE_AHEAD_DAYS = 30


class PlaceCallForm(forms.Form):
    """One call to one number. Field names are the provider's; flow variables arrive as
    `variables[<Name>]` fields, built from the chosen flow's template."""

    bridge = forms.ModelChoiceField(Bridge.objects.filter(is_active=True), empty_label=None)
    to = NumberField(
        label="To",
        # Typing a number shows its recent calls: only the number is posted, never a variable.
        widget=forms.TextInput(
            attrs={
                "hx-post": reverse_lazy("calls:call-new"),
                "hx-trigger": "input changed delay:300ms, change",
                "hx-target": "#recent",
                "hx-swap": "outerHTML",
                "hx-params": "to",
            }
        ),
    )
    call_again = forms.BooleanField(required=False, label="Call again anyway")
    flow = forms.ModelChoiceField(
        IvrFlow.objects.filter(is_active=True),
        required=False,
        label="IVR flow",
        empty_label="— none —",
    )
    audio = forms.ModelChoiceField(
        AudioAsset.objects.filter(is_active=True), required=False, empty_label="— none —"
    )
    audio_url = forms.CharField(
        max_length=500,
        required=False,
        label="or an audio URL",
        widget=forms.URLInput(attrs={"placeholder": "https://cdn.example.com/reminder.mp3"}),
        help_text="A public MP3 or WAV; kept in the catalogue to choose next time",
    )
    name = forms.CharField(
        max_length=100,
        required=False,
        label="Name at the provider",
        help_text="Optional; the provider's reports group calls by it, e.g. obd_api_call",
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
    at = forms.DateTimeField(
        required=False,
        label="Call at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4())
        # Typed in the person's own zone (the middleware activates it).
        self.fields["at"].help_text = (
            f"Empty: now. A later time ({timezone.get_current_timezone_name()}, at most "
            f"{SCHEDULE_AHEAD_DAYS} days ahead): the call waits, is sent then, and can be "
            "canceled until it is sent."
        )
        self.chosen_flow = self._chosen_flow()
        for variable, sensitive in self.chosen_flow.variable_specs if self.chosen_flow else []:
            self.fields[variable_field(variable)] = forms.CharField(
                label=variable,
                max_length=200,
                # A sensitive value is never sent back to the browser, even on a form error.
                widget=forms.PasswordInput(attrs={"autocomplete": "off"}) if sensitive else None,
                help_text="Sensitive: masked everywhere after sending." if sensitive else "",
            )

    def _chosen_flow(self) -> IvrFlow | None:
        raw = self.data.get("flow") if self.is_bound else self.initial.get("flow")
        if isinstance(raw, IvrFlow):
            return raw
        flow_id = id_in(raw)
        flows = cast("forms.ModelChoiceField[IvrFlow]", self.fields["flow"]).queryset
        return flows.filter(pk=flow_id).first() if flow_id and flows is not None else None

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

    def clean_audio_url(self) -> str:
        url = str(self.cleaned_data["audio_url"]).strip()
        if not url:
            return ""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise ValidationError("Only an http:// or https:// link can be played.")
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            raise ValidationError(
                "Enter a whole link, e.g. https://cdn.example.com/reminder.mp3."
            ) from None
        if PurePosixPath(parts.path).suffix.lower() not in (".mp3", ".wav"):
            raise ValidationError("Link to an MP3 or WAV file: its address ends in .mp3 or .wav.")
        return url

    def clean_at(self) -> datetime | None:
        at: datetime | None = self.cleaned_data["at"]
        if at is None:
            return None
        now = timezone.now()
        if at <= now:
            raise ValidationError("That time has passed: leave it empty to call now.")
        if at > now + timedelta(days=SCHEDULE_AHEAD_DAYS):
            raise ValidationError(f"A call can be placed at most {SCHEDULE_AHEAD_DAYS} days ahead.")
        return at

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # Form.clean returns cleaned_data (the stubs allow None)
        if data.get("audio") and data.get("audio_url"):
            self.add_error("audio_url", "Choose an audio or type its URL, not both.")
        plays_audio = data.get("audio") or data.get("audio_url")
        if data.get("flow") and plays_audio:
            raise ValidationError(PLAY_ERRORS[True], code="play")
        # Nothing to play, unless what was chosen or typed could not be read (its error says so).
        unreadable = self.has_error("flow") or self.has_error("audio_url")
        if not plays_audio and not data.get("flow") and not unreadable:
            self.add_error(None, ValidationError(PLAY_ERRORS[False], code="play"))
        if data.get("to"):
            self._check_number_may_be_called(data["to"])
        return data

    def play_errors(self) -> list[str]:
        """The errors about what the call plays, to show beside those fields too."""
        return [str(m) for e in self.non_field_errors().as_data() if e.code == "play" for m in e]

    def _check_number_may_be_called(self, number: str) -> None:
        if blocked := DoNotCall.objects.filter(number=number).first():
            why = f" ({blocked.reason})" if blocked.reason else ""
            self.add_error("to", f"This number is on the do-not-call list{why}.")
            return
        limit, minutes = settings.OBD_MAX_CALLS_PER_NUMBER, settings.OBD_MAX_CALLS_WINDOW_MINUTES
        if limit and _rang(number, minutes).count() >= limit:
            self.add_error(
                "to",
                f"This number was already called {limit} time(s) in the last {minutes} minutes; "
                "try again later.",
            )
            return
        # Back and submit again would ring the customer twice: say so, and let the agent confirm.
        # A double click (the same key: the call already stored) is not a second call.
        warn_minutes, data = settings.OBD_REDIAL_WARN_MINUTES, self.cleaned_data
        if not warn_minutes or data.get("call_again") or self._already_stored():
            return
        if last := _rang(number, warn_minutes).order_by(DIALLED_AT.desc()).first():
            self.add_error(
                "call_again",
                f"This number was called {naturaltime(last.submitted_at or last.created_at)} "
                f"(call #{last.pk}, {last.get_status_display().lower()}). "
                "Tick “Call again anyway” to ring it again.",
            )

    def _already_stored(self) -> bool:
        key = self.cleaned_data.get("idempotency_key")
        return key is not None and CallLog.objects.filter(idempotency_key=key).exists()

    def recent_calls(self) -> list[CallLog]:
        """The last calls to the number typed so far, so the agent sees them before calling."""
        typed = self.data.get("to") if self.is_bound else self.initial.get("to")
        try:
            number = normalize_number(str(typed or ""))
        except ValidationError:
            return []
        calls = CallLog.objects.filter(to=number, submitted_at__isnull=False)
        return list(calls.select_related("created_by", "api_key").order_by("-id")[:5])

    def _audio(self) -> AudioAsset | None:
        """The audio chosen, or the one at the URL typed: an asset with that URL is reused, or
        one is added to the catalogue."""
        data = self.cleaned_data
        if not data.get("audio_url"):
            return cast("AudioAsset | None", data.get("audio"))
        url: str = data["audio_url"]
        asset = AudioAsset.objects.filter(url=url).order_by("pk").first()
        if asset is None:
            name = PurePosixPath(urlsplit(url).path).name or urlsplit(url).netloc
            asset = AudioAsset.objects.create(name=name[:100], url=url)
        return asset

    def save(self, user: User | None, api_key: ApiKey | None = None) -> tuple[CallLog, bool]:
        """Store the pending call (by `user`, or through `api_key` with no user); a worker sends it (now, or at the time asked for), with its secrets sealed until then. The same idempotency key (a double click, a resubmitted
        form) returns the call already stored instead of a second one."""
        data = self.cleaned_data
        existing = CallLog.objects.filter(idempotency_key=data["idempotency_key"]).first()
        if existing:
            return existing, False
        now = timezone.now()
        call = CallLog.prepare(
            flow=data.get("flow"),
            variables=self.variable_values(),
            bridge=data["bridge"],
            to=data["to"],
            audio=self._audio(),
            name=data["name"],
            interval=data["interval"],
            webhook_id=data["webhook_id"],
            created_by=user,
            api_key=api_key,
            idempotency_key=data["idempotency_key"],
            created_at=now,
            not_before=data.get("at") or now,
            seal_secrets=True,
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

    def secrets(self) -> dict[str, str]:
        """The sensitive values typed again, to be sealed until the worker sends the call."""
        return {k: self.cleaned_data[variable_field(k)] for k in self.call.sensitive_variables}


def _rang(number: str, minutes: int) -> QuerySet[CallLog]:
    """Calls to `number` dialled in the last `minutes` that may have rung (not those refused
    or never sent), and calls placed in that time that a worker is about to send."""
    now = timezone.now()
    since = now - timedelta(minutes=minutes)
    about_to_ring = Q(
        submitted_at=None,
        status=CallLog.Status.PENDING,
        campaign=None,
        not_before__lte=now,
        created_at__gte=since,
    )
    return CallLog.objects.filter(Q(submitted_at__gte=since) | about_to_ring, to=number).exclude(
        status__in=NEVER_RANG
    )
