"""A new campaign and its CSV uploads."""

import copy
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from calls.engine.imports import queue_import
from calls.forms.calls import PLAY_ERRORS, PlaceCallForm
from calls.forms.fields import CsvFileField, one_line
from calls.models import ApiKey, AuditEntry, Campaign
from calls.models.policies import WEEKDAYS, every_day
from calls.models.retries import call_again, unreached
from calls.vocabulary import CALL_AGAIN_OUTCOMES, CALL_AGAIN_TICKED, RETRYABLE


class CampaignForm(forms.ModelForm[Campaign]):
    """A new campaign and its first CSV. Rows are checked by a worker after the upload, sent
    only on start."""

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
            "calling_days",
            "holidays",
            "transactional",
            "max_attempts",
            "retry_on",
            "retry_minutes",
            "start_at",
            "end_at",
        ]
        widgets = {
            "window_start": forms.TimeInput(attrs={"type": "time"}),
            "window_end": forms.TimeInput(attrs={"type": "time"}),
            "start_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "end_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        }

    calling_days = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS,
        coerce=int,
        initial=every_day,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every day",
    )
    retry_on = forms.TypedMultipleChoiceField(
        choices=[(status.value, status.label) for status in RETRYABLE],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Never an answered call, a refused one or a do-not-call number",
    )
    holidays = forms.CharField(
        required=False,
        help_text="Dates not to call, e.g. 2026-12-25, 2027-01-26 (the recipient's calendar)",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The same choices, labels and defaults as the single-call form.
        for name in ("bridge", "flow", "audio", "interval"):
            self.fields[name] = copy.deepcopy(PlaceCallForm.base_fields[name])
        self.fields["pace"].initial = settings.OBD_CAMPAIGN_PACE
        self.fields["window_timezone"].initial = settings.OBD_PROVIDER_TIMEZONE
        for name in ("max_attempts", "retry_minutes"):  # the model's defaults when left empty
            self.fields[name].required = False
        self.fields["webhook_id"].help_text = "Optional; the configured default is used when empty"
        # Typed in the person's own zone (the middleware activates it): the labels say which.
        zone = timezone.get_current_timezone_name()
        self.fields["start_at"].label = f"Start at ({zone})"
        self.fields["start_at"].help_text = "Empty: when you press Start. A later time: it waits."
        self.fields["end_at"].label = f"Stop at ({zone})"
        # Choosing a flow redraws the sample CSV and its columns (campaign_new.html#csv-sample).
        self.fields["flow"].widget.attrs |= {
            "hx-get": reverse("calls:campaign-new"),
            "hx-target": "#csv-sample",
            "hx-swap": "outerHTML",
        }

    def clean_name(self) -> str:
        return one_line(self.cleaned_data["name"])

    def clean_pace(self) -> Decimal:
        pace: Decimal = self.cleaned_data["pace"]
        if pace <= 0:  # said here in words, before the database's constraint would refuse it
            raise forms.ValidationError(
                "The pace must be more than 0 calls per second: e.g. 2, or 0.5 for one call "
                "every 2 seconds."
            )
        return pace

    def clean_window_timezone(self) -> str:
        name: str = self.cleaned_data["window_timezone"]
        if not name:  # each recipient's own zone
            return name
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(f"{name} is not a time zone, e.g. Asia/Kolkata.") from None
        return name

    def clean_start_at(self) -> datetime | None:
        start: datetime | None = self.cleaned_data["start_at"]
        if start is not None and start <= timezone.now():  # as the call form's "Call at"
            raise forms.ValidationError(
                "That time has passed: leave it empty to start when you press Start."
            )
        return start

    def clean_calling_days(self) -> list[int]:
        days: list[int] = self.cleaned_data["calling_days"]
        return days or every_day()

    def clean_max_attempts(self) -> int:
        return int(self.cleaned_data["max_attempts"] or 1)  # safe by default: no retry

    def clean_retry_minutes(self) -> int:
        return int(self.cleaned_data["retry_minutes"] or 30)

    def clean_holidays(self) -> list[str]:
        days = []
        for word in str(self.cleaned_data["holidays"]).replace(",", " ").split():
            try:
                days.append(date.fromisoformat(word).isoformat())
            except ValueError:
                raise forms.ValidationError(
                    f"{word[:20]} is not a date: write it like 2026-12-25."
                ) from None
        return days

    def create(self, user: User | None, api_key: ApiKey | None = None) -> Campaign:
        """The campaign, `importing` until a worker has read its CSV (queued on commit): a
        draft only then, or removed with its rows if the file cannot be used. Made through the
        API: no user, the key is the campaign's (and its rows')."""
        with transaction.atomic():  # the campaign and its file, or neither
            campaign = self.save(commit=False)
            campaign.created_by = user
            campaign.api_key = api_key
            campaign.status = Campaign.Status.IMPORTING
            campaign.save()
            # Exempting a campaign from the TRAI hours is a choice someone answers for.
            exempt = "Marked transactional: exempt from the TRAI hours."
            AuditEntry.record(
                user,
                AuditEntry.Action.CREATED,
                campaign=campaign,
                detail=exempt if campaign.transactional else "",
                api_key=api_key,
            )
            queue_import(campaign, self.cleaned_data["csv_file"], user)
        return campaign

    def ask_for_the_file_again(self) -> None:
        """On the page: a browser never shows a chosen file back, so after any error it must be
        chosen again (an API client's file is in its request, and needs no such word)."""
        if self.is_bound and self.errors and not self.has_error("csv_file"):
            self.add_error("csv_file", "Choose the CSV file again: it is not kept after an error.")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # ModelForm.clean returns cleaned_data (the stubs allow None)
        if bool(data.get("window_start")) != bool(data.get("window_end")):
            raise forms.ValidationError("Give both ends of the calling window, or neither.")
        if data.get("max_attempts", 1) > 1 and not data.get("retry_on"):
            self.add_error("retry_on", "Choose the outcomes to try again, or 1 attempt in all.")
        # Said beside the flow and audio fields (the model's constraint would say it at the top).
        plays = [name for name in ("flow", "audio") if data.get(name)]
        if len(plays) != 1 and not (self.has_error("flow") or self.has_error("audio")):
            self.add_error("flow", PLAY_ERRORS[bool(plays)])
        start, end = data.get("start_at"), data.get("end_at")
        if end and end <= (start or timezone.now()):
            self.add_error("end_at", "The stop time must come after the start.")
        return data


class CsvUploadForm(forms.Form):
    csv_file = CampaignForm.base_fields["csv_file"]


class CallAgainForm(forms.Form):
    """Which outcomes to call again, on a finished campaign: the numbers whose last attempt
    ended so, never answered and not on the do-not-call list now."""

    outcomes = forms.MultipleChoiceField(
        choices=[(status.value, status.label) for status in CALL_AGAIN_OUTCOMES],
        initial=list(CALL_AGAIN_TICKED),
        widget=forms.CheckboxSelectMultiple,
        label="Numbers whose last attempt ended",
        error_messages={"required": "Tick at least one outcome."},
    )

    def __init__(self, campaign: Campaign, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.campaign = campaign

    def picked(self) -> list[str]:
        """The outcomes ticked so far (the initial ones on a new page)."""
        if not self.is_bound:
            return [str(status) for status in self.fields["outcomes"].initial]
        return list(self.cleaned_data["outcomes"]) if self.is_valid() else []

    def count(self) -> int:
        """How many numbers the new campaign would call."""
        picked = self.picked()
        return unreached(self.campaign, picked).count() if picked else 0

    def save(self, user: User) -> tuple[Campaign, bool]:
        """The draft calling those numbers again, and whether it was made now: a draft already
        made from this campaign for the same numbers (a second submit, Back and submit again)
        is reused rather than made twice. One at a time, under the campaign's lock."""
        with transaction.atomic():
            Campaign.objects.select_for_update().filter(pk=self.campaign.pk).first()
            if draft := self._same_draft():
                return draft, False
            return call_again(self.campaign, self.cleaned_data["outcomes"], user), True

    def _same_draft(self) -> Campaign | None:
        numbers = unreached(self.campaign, self.cleaned_data["outcomes"]).values_list("to")
        wanted = {to for (to,) in numbers}
        for draft in self.campaign.follow_ups.filter(status=Campaign.Status.DRAFT):
            if {to for (to,) in draft.calls.values_list("to")} == wanted:
                return draft
        return None
