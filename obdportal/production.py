"""Production: `DJANGO_SETTINGS_MODULE=obdportal.production`. Everything in settings.py, hardened.

Refuses to start without a real SECRET_KEY and a webhook secret: the import raises, so
`manage.py`, gunicorn and the workers all stop with the reason; each problem keeps its id
(calls.E001, calls.E002) so logs and docs can name it, and never repeats the value it judges.
Behind a TLS proxy set SECURE_PROXY_SSL_HEADER=true so Django trusts the
proxy's X-Forwarded-Proto header (only when the proxy always sets it), and
OBD_TRUSTED_PROXY_COUNT=1 so log-in lock-outs key on the client's address, not the proxy's.
"""

from django.core.exceptions import ImproperlyConfigured

from obdportal.settings import *  # noqa: F403
from obdportal.settings import OBD_WEBHOOK_SECRET, SECRET_KEY, _bool, env

SECRET_KEY_MIN_LENGTH = 50


def production_secret_problems(secret_key: str, webhook_secret: str) -> list[str]:
    problems = []
    if (
        secret_key.startswith(("insecure-", "django-insecure-"))
        or len(secret_key) < SECRET_KEY_MIN_LENGTH
        or len(set(secret_key)) < 5
    ):
        problems.append(
            f"calls.E001: SECRET_KEY must be set to a long random value in production "
            f"(at least {SECRET_KEY_MIN_LENGTH} characters, not the development default). "
            "HINT: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    if not webhook_secret:
        problems.append(
            "calls.E002: OBD_WEBHOOK_SECRET must be set in production: without it the webhook "
            "would accept deliveries from anyone. HINT: use the same value as the webhook's "
            "secret in the provider's panel."
        )
    return problems


if problems := production_secret_problems(SECRET_KEY, OBD_WEBHOOK_SECRET):
    raise ImproperlyConfigured("production refuses to start:\n" + "\n".join(problems))

OBD_PRODUCTION = True
DEBUG = False

SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", True)
if _bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", True)  # false also needs SILENCED_SYSTEM_CHECKS
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
WHITENOISE_USE_FINDERS = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
