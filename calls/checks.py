"""Start-up checks: production refuses to run with a guessable key or an open webhook."""

from django.conf import settings
from django.core import checks


@checks.register()
def production_secrets(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if not settings.OBD_PRODUCTION:
        return []
    errors = []
    if settings.SECRET_KEY.startswith("insecure-") or len(settings.SECRET_KEY) < 50:
        errors.append(
            checks.Error(
                "SECRET_KEY must be set to a long random value in production.",
                hint="python -c 'import secrets; print(secrets.token_urlsafe(50))'",
                id="calls.E001",
            )
        )
    if not settings.OBD_WEBHOOK_SECRET:
        errors.append(
            checks.Error(
                "OBD_WEBHOOK_SECRET must be set in production: without it the "
                "webhook would accept deliveries from anyone.",
                hint="Use the same value as the webhook's secret in the provider's panel.",
                id="calls.E002",
            )
        )
    return errors
