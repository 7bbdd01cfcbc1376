"""A person's own preferences page: the time zone the portal writes their times in, and the
spreadsheet their CSV downloads are written for."""

import functools
import zoneinfo
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from calls.http import AuthenticatedHttpRequest
from calls.models import UserPreference
from calls.models.records import time_zones
from calls.templatetags.moments import zone_name

# What the portal's people mostly pick (its market and where its supervisors sit), listed first.
COMMON_ZONES = (
    "Asia/Kolkata",
    "Asia/Dubai",
    "Asia/Riyadh",
    "Asia/Singapore",
    "Asia/Dhaka",
    "Asia/Kathmandu",
    "Asia/Colombo",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "Australia/Sydney",
    "UTC",
)
# Names the tz database keeps only for old software: whole areas of aliases (US/Eastern…).
ALIAS_AREAS = ("Etc/", "SystemV/", "US/", "Canada/", "Brazil/", "Chile/", "Mexico/")


@functools.cache
def canonical_zones() -> tuple[str, ...]:
    """One name per zone people live in: the tz database's own list of them, zone.tab, which
    leaves out its old aliases (Asia/Calcutta for Asia/Kolkata); where the machine has no such
    list, every Area/Place name outside the alias areas."""
    tables = (Path(directory, "zone.tab") for directory in zoneinfo.TZPATH)
    table = next((path for path in tables if path.is_file()), None)
    if table is None:
        names = {name for name in time_zones() if "/" in name and not name.startswith(ALIAS_AREAS)}
    else:
        rows = table.read_text(encoding="utf-8").splitlines()
        names = {row.split("\t")[2] for row in rows if row and not row.startswith("#")}
    return tuple(sorted((names & time_zones()) | {"UTC"}))


def zone_choices(current: str) -> list[Any]:
    """The common zones, then the others; a person's old alias stays offered until they change."""
    others = [zone for zone in canonical_zones() if zone not in COMMON_ZONES]
    if current and current not in COMMON_ZONES and current not in others:
        others = sorted([*others, current])
    return [
        ("", f"The portal's time zone ({settings.TIME_ZONE})"),
        ("Common", [(zone, zone_name(zone)) for zone in COMMON_ZONES]),
        ("All zones", [(zone, zone_name(zone)) for zone in others]),
    ]


class PreferencesForm(forms.ModelForm[UserPreference]):
    time_zone = forms.ChoiceField(label="Time zone", required=False)

    class Meta:
        model = UserPreference
        fields = ["time_zone", "export_flavour"]
        widgets = {"export_flavour": forms.RadioSelect}
        help_texts = {
            "export_flavour": "The call log, a campaign's results and its set-aside rows are "
            "downloaded for it. Excel on Windows needs its own flavour to read names in Hindi or "
            "Tamil right, and its locale's list separator to split the columns."
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        zone_field = self.fields["time_zone"]
        assert isinstance(zone_field, forms.ChoiceField)
        zone_field.choices = zone_choices(self.instance.time_zone)
        zone_field.help_text = "Every time on the portal's pages and in exports is written in it."


def preferences(request: AuthenticatedHttpRequest) -> HttpResponse:
    preference = UserPreference.objects.filter(user=request.user).first()
    form = PreferencesForm(
        request.POST or None, instance=preference or UserPreference(user=request.user)
    )
    if form.is_valid():
        saved = form.save()
        zone = zone_name(saved.time_zone or settings.TIME_ZONE)
        flavour = saved.get_export_flavour_display()
        messages.success(request, f"Times are now shown in {zone} time; exports are for {flavour}.")
        return redirect("calls:preferences")
    return render(request, "calls/preferences.html", {"form": form, "now": timezone.now()})
