"""The portal's own settings (same database, middleware, logging), with a one-view URLconf."""

from obdportal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.baseline.urls"
