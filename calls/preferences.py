"""A person's own preferences page: the time zone the portal writes their times in."""

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


class TimeZoneForm(forms.ModelForm[UserPreference]):
    time_zone = forms.ChoiceField(label="Time zone", required=False)

    class Meta:
        model = UserPreference
        fields = ["time_zone"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        zone_field = self.fields["time_zone"]
        assert isinstance(zone_field, forms.ChoiceField)
        zone_field.choices = [
            ("", f"The portal's time zone ({settings.TIME_ZONE})"),
            *((zone, zone.replace("_", " ")) for zone in sorted(time_zones())),
        ]
        zone_field.help_text = "Every time on the portal's pages and in exports is written in it."


def preferences(request: AuthenticatedHttpRequest) -> HttpResponse:
    preference = UserPreference.objects.filter(user=request.user).first()
    form = TimeZoneForm(
        request.POST or None, instance=preference or UserPreference(user=request.user)
    )
    if form.is_valid():
        chosen = form.save().time_zone or settings.TIME_ZONE
        messages.success(request, f"Times are now shown in {chosen.replace('_', ' ')} time.")
        return redirect("calls:preferences")
    return render(request, "calls/preferences.html", {"form": form, "now": timezone.now()})
