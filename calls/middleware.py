"""Times shown in the zone of the person looking (their preference, else the portal's TIME_ZONE)."""

from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone

from calls.models import UserPreference


class UserTimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        zone = UserPreference.time_zone_of(request.user) if request.user.is_authenticated else ""
        if zone:
            timezone.activate(ZoneInfo(zone))
        try:
            return self.get_response(request)
        finally:
            # A worker thread serves other people next. (A streamed body is written after this:
            # the export takes its zone along instead of reading the active one.)
            timezone.deactivate()
