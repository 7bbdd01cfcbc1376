from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from calls.templatetags.moments import zone_name


def portal(request: HttpRequest) -> dict[str, object]:
    # The zone this person's times are written in (calls.middleware activates it).
    zone = zone_name(timezone.get_current_timezone_name())
    return {"sandbox": settings.OBD_SANDBOX, "time_zone_name": zone}
