"""Settings for OBD Portal, read from the environment (and an optional `.env`) by django-environ.

The defaults give a zero-setup install: a SQLite file, the sandbox gateway, DEBUG off.
A bad value (DEBUG=maybe, an unknown DATABASE_URL scheme) stops start-up with a clear message.
"""

import os
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

# Django's generic classes, subscriptable at run time as django-stubs' annotations need them
# (ModelAdmin[CallLog], UploadedFile[bytes]).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _bool(name: str, default: bool) -> bool:
    """django-environ reads any unknown word as False; a typo in a flag must stop start-up."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use true or false.")


def _database(url: str) -> dict[str, Any]:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL must start with sqlite:/// or postgres:// (got scheme {scheme!r})."
        )
    try:
        config: dict[str, Any] = environ.Env.db_url_config(url)
    except Exception as exc:  # django-environ raises several kinds; all mean the same to a person
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Several web and worker processes write at once: WAL lets readers go on, IMMEDIATE takes
        # the write lock at BEGIN so two writers queue on the busy timeout instead of deadlocking.
        # The engine copies the log into the database file every second (clock.checkpoint): a
        # connection's own checkpoint, at a commit that crosses 1,000 pages, cost that request
        # some 6 ms; its threshold stays, higher, for a portal run without an engine.
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=10000;"
            ),
            **config.get("OPTIONS", {}),
        }
        # Tests use a file too, so a separate worker process can share the test database;
        # one per test run, so two runs side by side never share one.
        config["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}
    else:
        config.setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
        config["CONN_HEALTH_CHECKS"] = True
        # psycopg prepares only what a server-binding cursor runs: the few statements run for
        # every call (calls/models/bulk.py, prepared_cursor). Django's cursors never are.
        config["OPTIONS"] = {"prepare_threshold": 0, **config.get("OPTIONS", {})}
        # A pooler in transaction mode may give each transaction another server connection:
        # nothing prepared, no server-side cursor (Django's setting for it).
        config["DISABLE_SERVER_SIDE_CURSORS"] = _bool("DB_TRANSACTION_POOLING", False)
    return config


def _price(raw: str) -> Decimal | None:
    """What one provider credit costs, e.g. 0.45; empty means unknown."""
    if not raw.strip():
        return None
    try:
        price = Decimal(raw)
    except InvalidOperation:
        price = Decimal("NaN")
    if not price.is_finite() or price < 0:
        raise ImproperlyConfigured(
            f"OBD_PRICE_PER_CREDIT={raw!r} is not a price: use a number such as 0.45, or nothing."
        )
    return price


DEBUG = _bool("DEBUG", False)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-dev-key-change-me-in-production")
# Rotating the key: move the old one here (comma-separated) until campaigns sealed with it are sent.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

DATABASES = {
    "default": _database(env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"))
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The dashboard's covering index (INCLUDE columns) is a PostgreSQL feature; SQLite builds it as a
# plain index, which is fine for the zero-setup install.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# The provider. An empty token selects the sandbox gateway, which never leaves this machine.
MOBTEXTING_API_URL = env.url(
    "MOBTEXTING_API_URL", default="https://portal.mobtexting.com/api/v2/"
).geturl()
if not MOBTEXTING_API_URL.endswith("/"):
    MOBTEXTING_API_URL += "/"
MOBTEXTING_API_TOKEN = env.str("MOBTEXTING_API_TOKEN", default="")
MOBTEXTING_WEBHOOK_ID = env.str("MOBTEXTING_WEBHOOK_ID", default="")
MOBTEXTING_CONNECT_TIMEOUT = env.float("MOBTEXTING_CONNECT_TIMEOUT", default=5.0)
MOBTEXTING_READ_TIMEOUT = env.float("MOBTEXTING_READ_TIMEOUT", default=15.0)

OBD_WEBHOOK_SECRET = env.str("OBD_WEBHOOK_SECRET", default="")
OBD_WEBHOOK_VERIFICATION_TOKEN = env.str("OBD_WEBHOOK_VERIFICATION_TOKEN", default="")
OBD_WEBHOOK_MAX_BODY = env.int("OBD_WEBHOOK_MAX_BODY", default=64 * 1024)
OBD_CSV_MAX_BYTES = env.int("OBD_CSV_MAX_BYTES", default=20 * 1024 * 1024)  # campaign, do-not-call
# The provider's market: `8867135123` is an Indian number. Set it empty to require a country code.
OBD_DEFAULT_REGION = env.str("OBD_DEFAULT_REGION", default="IN").upper() or None
OBD_PROVIDER_TIMEZONE = env.str("OBD_PROVIDER_TIMEZONE", default="Asia/Kolkata")
OBD_RECONCILE_AFTER_MINUTES = env.int("OBD_RECONCILE_AFTER_MINUTES", default=30)
OBD_RECONCILE_EVERY_MINUTES = env.int("OBD_RECONCILE_EVERY_MINUTES", default=10)
# Keypress look-ups (status API GETs): the provider allows 1,000 GETs a minute for everything.
OBD_KEYPRESS_LOOKUPS_PER_MINUTE = env.int("OBD_KEYPRESS_LOOKUPS_PER_MINUTE", default=300)
OBD_KEYPRESS_EVERY_MINUTES = env.int("OBD_KEYPRESS_EVERY_MINUTES", default=1)
if OBD_KEYPRESS_LOOKUPS_PER_MINUTE < 1 or OBD_KEYPRESS_EVERY_MINUTES < 1:
    raise ImproperlyConfigured(
        "OBD_KEYPRESS_LOOKUPS_PER_MINUTE and OBD_KEYPRESS_EVERY_MINUTES must be 1 or more."
    )
# How often the worker copies the provider's unsubscribers list onto the do-not-call list, and
# looks for what people asked to be told of (campaigns finished, failures, lack of balance).
OBD_OPTOUT_SYNC_EVERY_MINUTES = env.int("OBD_OPTOUT_SYNC_EVERY_MINUTES", default=60)
OBD_NOTICE_CHECK_EVERY_SECONDS = env.int("OBD_NOTICE_CHECK_EVERY_SECONDS", default=60)
OBD_CAMPAIGN_PACE = env.float("OBD_CAMPAIGN_PACE", default=2.0)
OBD_CAMPAIGN_DISPATCHERS = env.int("OBD_CAMPAIGN_DISPATCHERS", default=2)
# TRAI: promotional campaign calls to Indian numbers only 09:00 to 21:00 the recipient's time
# (campaigns marked transactional are exempt). How often scheduled work is looked for: campaigns
# to start or end, retries to make, single calls whose send task was lost.
OBD_TRAI_PRESET = env.bool("OBD_TRAI_PRESET", default=True)
OBD_SCHEDULE_EVERY_SECONDS = env.int("OBD_SCHEDULE_EVERY_SECONDS", default=15)
OBD_DISPATCH_BUDGET_SECONDS = env.int("OBD_DISPATCH_BUDGET_SECONDS", default=60)
# Crash recovery (see docs/reliability.md): how long a dispatcher holds rows past its batch's
# last slot (a live one that overruns only loses them to another dispatcher: the POST's
# compare-and-set keeps each row to one send); how long after its POST began a call with no
# recorded answer is given up as unknown (past the gateway's connect and read timeouts); how
# often the sweeper looks for rows and dispatch tasks a dead process left behind.
OBD_CLAIM_LEASE_SECONDS = env.int("OBD_CLAIM_LEASE_SECONDS", default=10)
OBD_SEND_GRACE_SECONDS = env.int("OBD_SEND_GRACE_SECONDS", default=30)
OBD_SWEEP_EVERY_SECONDS = env.int("OBD_SWEEP_EVERY_SECONDS", default=5)
OBD_RATE_LIMIT_WAIT_SECONDS = env.float("OBD_RATE_LIMIT_WAIT_SECONDS", default=10.0)
# The circuit breaker: a campaign pauses itself after this many sends in a row the provider left
# without an answer (timed out, unreachable, 5xx); 0: never.
OBD_PAUSE_AFTER_PROVIDER_FAILURES = env.int("OBD_PAUSE_AFTER_PROVIDER_FAILURES", default=3)
if OBD_PAUSE_AFTER_PROVIDER_FAILURES < 0:
    raise ImproperlyConfigured("OBD_PAUSE_AFTER_PROVIDER_FAILURES must be 0 (never) or more.")
OBD_MAX_CALLS_PER_NUMBER = env.int("OBD_MAX_CALLS_PER_NUMBER", default=0)
OBD_MAX_CALLS_WINDOW_MINUTES = env.int("OBD_MAX_CALLS_WINDOW_MINUTES", default=60)
# The call form asks to confirm a number called this many minutes ago or less (0: never asks).
OBD_REDIAL_WARN_MINUTES = env.int("OBD_REDIAL_WARN_MINUTES", default=10)
OBD_SANDBOX_DELAY_SECONDS = env.float("OBD_SANDBOX_DELAY_SECONDS", default=4.0)
OBD_SANDBOX = not MOBTEXTING_API_TOKEN
# What a provider credit costs, to show cost as money; empty: unknown, cost is shown in credits.
OBD_CURRENCY = env.str("OBD_CURRENCY", default="INR").strip().upper()
OBD_PRICE_PER_CREDIT = _price(env.str("OBD_PRICE_PER_CREDIT", default=""))
OBD_PRODUCTION = False  # obdportal.production sets it
# The REST API (calls/api/): how long an Idempotency-Key's answer is kept, each key's requests
# per minute, and the largest body it reads.
OBD_API_IDEMPOTENCY_HOURS = env.int("OBD_API_IDEMPOTENCY_HOURS", default=24)
OBD_API_REQUESTS_PER_MINUTE = env.int("OBD_API_REQUESTS_PER_MINUTE", default=600)
OBD_API_MAX_BODY = env.int("OBD_API_MAX_BODY", default=256 * 1024)
OBD_API_PURGE_EVERY_MINUTES = env.int("OBD_API_PURGE_EVERY_MINUTES", default=10)
if min(OBD_API_IDEMPOTENCY_HOURS, OBD_API_REQUESTS_PER_MINUTE, OBD_API_PURGE_EVERY_MINUTES) < 1:
    raise ImproperlyConfigured(
        "OBD_API_IDEMPOTENCY_HOURS, OBD_API_REQUESTS_PER_MINUTE and OBD_API_PURGE_EVERY_MINUTES "
        "must be 1 or more."
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_tasks_db",
    "axes",
    "ninja",  # the REST API's docs page, served from its own static files (no CDN)
    "calls",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The webhook door answers here: a machine needs none of the browser's middleware below.
    "obdportal.lean_door.LeanDoorMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "calls.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

# No inline script or style anywhere: scripts are files (htmx gets the nonce from its tag).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "media-src": [CSP.SELF, "https:"],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
}

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # login throttling: refuses locked-out attempts first
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# Lock the pair, so a stranger guessing one account cannot lock out a whole office behind one IP.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Failed attempts keep the form's fields for the admin: mask the change-password form's too.
AXES_SENSITIVE_PARAMETERS = [
    "username",
    "ip_address",
    "csrfmiddlewaretoken",
    "old_password",
    "new_password1",
    "new_password2",
]
# Behind a proxy every request comes from the proxy's address: OBD_TRUSTED_PROXY_COUNT is the
# number of proxies in front of the portal (the deploy docs' TLS proxy: 1), whose
# X-Forwarded-For then names the client. django-ipware counts only the proxies listed in that
# header after the client (the nearest one is REMOTE_ADDR), and believes a header of exactly that
# length, so a forged entry in front makes it fall back instead of locking out whoever it names.
OBD_TRUSTED_PROXY_COUNT = env.int("OBD_TRUSTED_PROXY_COUNT", default=0)
if OBD_TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("OBD_TRUSTED_PROXY_COUNT must be 0 (no proxy) or more.")
if OBD_TRUSTED_PROXY_COUNT:
    AXES_IPWARE_PROXY_COUNT = OBD_TRUSTED_PROXY_COUNT - 1
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

ROOT_URLCONF = "obdportal.urls"
WSGI_APPLICATION = "obdportal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "calls.context_processors.portal",
            ],
            # `|moment` writes every instant the same way on every page.
            "builtins": ["calls.templatetags.moments"],
        },
    },
]

# Campaign dispatch runs long: it has its own queue so sandbox outcomes, reconcile and the
# heartbeat never wait behind it. `make run` starts one worker for each.
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "campaigns"],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"


def _mailer(url: str) -> dict[str, Any]:
    """Django's MAILERS entry for django-environ's e-mail URL (smtp+tls://user:pass@host:587)."""
    try:
        config = environ.Env.email_url_config(url)
    except Exception:  # the URL holds a password: name the variable, never echo its value
        raise ImproperlyConfigured(
            "EMAIL_URL is not a valid e-mail URL (smtp+tls://user:password@host:587)."
        ) from None
    options = {
        "EMAIL_HOST": "host",
        "EMAIL_PORT": "port",
        "EMAIL_HOST_USER": "username",
        "EMAIL_HOST_PASSWORD": "password",
        "EMAIL_USE_TLS": "use_tls",
        "EMAIL_USE_SSL": "use_ssl",
        "EMAIL_FILE_PATH": "file_path",
    }
    return {
        "BACKEND": config["EMAIL_BACKEND"],
        "OPTIONS": {option: config[name] for name, option in options.items() if config.get(name)},
    }


# No mailer unless EMAIL_URL is set; without one the password reset pages (they mail a link) do
# not exist. (An empty MAILERS would draw Django's mail.W001 warning.)
_email_url = env.str("EMAIL_URL", default="")
if _email_url:
    MAILERS = {"default": _mailer(_email_url)}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="webmaster@localhost")

LANGUAGE_CODE = "en-us"
# One way to write a moment everywhere, with seconds: timeline entries are seconds apart.
FORMAT_MODULE_PATH = ["obdportal.formats"]
# The portal's zone; each user may pick their own (calls.middleware.UserTimeZoneMiddleware).
# (Django itself refuses a zone it does not know.)
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Kolkata")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True  # serves static files without collectstatic in development

# One line per event, `key=value` pairs after the message, so log search can filter on ids.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"}
    },
    "filters": {
        "without_query_strings": {"()": "obdportal.debug.WithoutQueryStrings"},
        "client_errors_in_one_line": {"()": "obdportal.debug.ClientErrorsInOneLine"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "django.server": {"filters": ["without_query_strings"], "propagate": True},
        "django.request": {"filters": ["client_errors_in_one_line"], "propagate": True},
    },
}


# Signed callbacks to other systems (calls/callbacks/): how often the engine sends what waits, the
# timeouts of one POST (a slow receiver holds only its own endpoint's queue), how long an endpoint
# may fail before it is disabled, how long a rotated secret still signs. Targets on loopback,
# private or link-local addresses are refused unless allowed here (tests, a receiver on this host).
OBD_CALLBACK_EVERY_SECONDS = env.int("OBD_CALLBACK_EVERY_SECONDS", default=5)
OBD_CALLBACK_CONNECT_TIMEOUT = env.float("OBD_CALLBACK_CONNECT_TIMEOUT", default=3.0)
OBD_CALLBACK_READ_TIMEOUT = env.float("OBD_CALLBACK_READ_TIMEOUT", default=5.0)
OBD_CALLBACK_DISABLE_AFTER_DAYS = env.int("OBD_CALLBACK_DISABLE_AFTER_DAYS", default=3)
OBD_CALLBACK_ROTATION_OVERLAP_HOURS = env.int("OBD_CALLBACK_ROTATION_OVERLAP_HOURS", default=24)
OBD_CALLBACKS_ALLOW_PRIVATE = env.bool("OBD_CALLBACKS_ALLOW_PRIVATE", default=False)
if min(OBD_CALLBACK_EVERY_SECONDS, OBD_CALLBACK_DISABLE_AFTER_DAYS) < 1 or not (
    0 < OBD_CALLBACK_CONNECT_TIMEOUT <= 30 and 0 < OBD_CALLBACK_READ_TIMEOUT <= 30
):
    raise ImproperlyConfigured(
        "OBD_CALLBACK_EVERY_SECONDS and OBD_CALLBACK_DISABLE_AFTER_DAYS must be 1 or more, and "
        "the callback timeouts more than 0 and at most 30 seconds."
    )

DEFAULT_EXCEPTION_REPORTER_FILTER = "obdportal.debug.SecretScrubbingFilter"

# Errors to Sentry when a DSN is set (pip install sentry-sdk). No personal data is sent.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    try:
        import sentry_sdk
    except ImportError:
        raise ImproperlyConfigured(
            "SENTRY_DSN is set: install sentry-sdk (pip install sentry-sdk)"
        ) from None
    sentry_sdk.init(
        dsn=SENTRY_DSN,
        send_default_pii=False,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
    )
