"""Settings fail loudly on bad values; each case runs in a fresh interpreter."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DEBUG"}}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.DEBUG, settings.DATABASES['default']['ENGINE'], settings.OBD_SANDBOX)",
        ],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "obdportal.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_defaults_give_sqlite_the_sandbox_and_debug_off():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "django.db.backends.sqlite3", "True"]


def test_debug_true_is_read():
    assert load_settings(DEBUG="true").stdout.split()[0] == "True"


def test_it_refuses_debug_maybe():
    result = load_settings(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


@pytest.mark.parametrize("url", ["mysqlx://nowhere/db", "not a url"])
def test_it_refuses_a_bad_database_url(url):
    result = load_settings(DATABASE_URL=url)
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_a_token_selects_the_real_gateway():
    result = load_settings(MOBTEXTING_API_TOKEN="t0ken")
    assert result.stdout.split()[2] == "False"


def test_env_example_lists_every_variable_the_settings_read():
    example = (ROOT / ".env.example").read_text()
    source = (ROOT / "obdportal" / "settings.py").read_text()
    import re

    read = set(re.findall(r'env\.\w+\("([A-Z_]+)"', source)) | set(
        re.findall(r'_bool\("([A-Z_]+)"', source)
    )
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.M))
    assert read - listed == set()
