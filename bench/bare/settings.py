"""No apps, no middleware, one URL: the bare app. The database is the portal's, configured alike."""

from obdportal.settings import ALLOWED_HOSTS, DATABASES, SECRET_KEY  # noqa: F401

DEBUG = False
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.bare.app"
USE_TZ = True
