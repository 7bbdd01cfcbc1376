from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone


def portal(request: HttpRequest) -> dict[str, object]:
    # The zone this person's times are written in (calls.middleware activates it), written as
    # the zone list writes it: "America/New York".
    zone = timezone.get_current_timezone_name().replace("_", " ")
    return {"sandbox": settings.OBD_SANDBOX, "time_zone_name": zone}
