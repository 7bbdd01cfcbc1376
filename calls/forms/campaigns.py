"""A new campaign and its CSV uploads."""

import copy
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.conf import settings
from django.urls import reverse

from calls.forms.calls import PlaceCallForm
from calls.forms.fields import CsvFileField
from calls.models import (
    Campaign,
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
        # Choosing a flow redraws the sample CSV and its columns (campaign_new.html#csv-sample).
        self.fields["flow"].widget.attrs |= {
            "hx-get": reverse("calls:campaign-new"),
            "hx-target": "#csv-sample",
            "hx-swap": "outerHTML",
        }

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
