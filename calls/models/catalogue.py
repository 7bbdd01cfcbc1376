"""What a call plays and from where: bridges, IVR flows, audio assets, and the Playback they make."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q

from calls.phone import pretty_number, validate_number
from calls.vocabulary import MASK

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

    @property
    def number_display(self) -> str:
        return pretty_number(self.number)


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
    # What each key means in this flow, e.g. {"1": "confirm", "9": "stop calling me"}: campaign
    # results count calls by the first key pressed, under these names.
    choices = models.JSONField(default=dict, blank=True)
    stop_key = models.CharField(
        max_length=1,
        blank=True,
        help_text="The key that means “stop calling me”: a customer who presses it is put on "
        "the do-not-call list. Empty: none.",
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

    def choice_words(self, key: str) -> str:
        """A key as the results name it: `1 (confirm)`, or `5` when the flow names no such key."""
        name = self.choices.get(key) if isinstance(self.choices, dict) else None
        return f"{key} ({name})" if name else key

    def clean(self) -> None:
        if self.stop_key and self.stop_key not in self.choices:
            raise ValidationError(
                {
                    "stop_key": f"Name key {self.stop_key} among the choices first (e.g. "
                    f"{self.stop_key}=stop calling me)."
                }
            )


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

    # Not indexed alone: the call log indexes each with the order it lists calls in (see
    # CallLog.Meta), and a campaign's table is small.
    bridge = models.ForeignKey(Bridge, on_delete=models.PROTECT, related_name="+", db_index=False)
    flow = models.ForeignKey(
        IvrFlow, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
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
