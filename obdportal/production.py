"""Production: `DJANGO_SETTINGS_MODULE=obdportal.production`. Everything in settings.py, hardened.

Refuses to start (system check errors, see calls/checks.py) without a real SECRET_KEY and a
webhook secret. Behind a TLS proxy set SECURE_PROXY_SSL_HEADER=true so Django trusts the
proxy's X-Forwarded-Proto header (only when the proxy always sets it).
"""

from obdportal.settings import *  # noqa: F403
from obdportal.settings import _bool, env

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
