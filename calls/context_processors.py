from django.conf import settings


def portal(request) -> dict:
    return {"sandbox": settings.OBD_SANDBOX}
