"""Settings fail loudly on bad values; each case runs in a fresh interpreter. Also what the
settings promise around them: the DEBUG page hides secrets, Python 3.12 and 3.13 both work."""

import ast
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from tests.helpers.settings import read_settings

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


@pytest.mark.parametrize(("pooling", "disabled"), [("", False), ("true", True)])
def test_a_transaction_pooler_turns_prepared_statements_off(pooling, disabled):
    url = "postgres://obd@db.example/obdportal"
    databases = read_settings("DATABASES", DATABASE_URL=url, DB_TRANSACTION_POOLING=pooling)
    database = databases["DATABASES"]["default"]  # type: ignore[index]
    assert database["DISABLE_SERVER_SIDE_CURSORS"] is disabled
    assert database["OPTIONS"]["prepare_threshold"] == 0  # used only where not disabled


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


def test_secret_key_fallbacks_are_read_as_a_list():
    assert read_settings("SECRET_KEY_FALLBACKS") == {"SECRET_KEY_FALLBACKS": []}
    read = read_settings("SECRET_KEY_FALLBACKS", SECRET_KEY_FALLBACKS="old-key-1,old-key-2")
    assert read == {"SECRET_KEY_FALLBACKS": ["old-key-1", "old-key-2"]}


@pytest.mark.parametrize(("proxies", "listed"), [("1", 0), ("2", 1)])
def test_a_trusted_proxy_count_makes_lock_outs_read_x_forwarded_for(proxies, listed):
    # django-ipware counts the proxies listed in the header after the client; the nearest proxy
    # is the connection itself (REMOTE_ADDR), so it is one fewer than the proxies in front.
    read = read_settings(
        "AXES_IPWARE_PROXY_COUNT",
        "AXES_IPWARE_META_PRECEDENCE_ORDER",
        OBD_TRUSTED_PROXY_COUNT=proxies,
    )
    assert read == {
        "AXES_IPWARE_PROXY_COUNT": listed,
        "AXES_IPWARE_META_PRECEDENCE_ORDER": ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"],
    }


def test_it_refuses_a_negative_proxy_count():
    result = load_settings(OBD_TRUSTED_PROXY_COUNT="-1")
    assert result.returncode != 0
    assert "OBD_TRUSTED_PROXY_COUNT must be 0" in result.stderr


# --- the DEBUG error page -----------------------------------------------------------------------

DEBUG_PAGE = """
import os, sys, django
django.setup()
from django.db import connection
from django.test import RequestFactory
from django.views.debug import ExceptionReporter, technical_500_response

# runserver copies the process environment into every request's META.
request = RequestFactory().get("/calls/", **os.environ)
try:
    connection.ensure_connection()
except Exception:
    print(technical_500_response(request, *sys.exc_info()).content.decode())
    print(ExceptionReporter(request, *sys.exc_info()).get_traceback_text())
"""


def test_the_debug_page_never_shows_the_database_password():
    with socket.socket() as sock:  # a port nothing listens on: the connection is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    password = "Pg-" + secrets.token_urlsafe(16)
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DEBUG"}}
    result = subprocess.run(
        [sys.executable, "-c", DEBUG_PAGE],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "obdportal.settings",
            "DEBUG": "true",
            "ALLOWED_HOSTS": "testserver",
            "DATABASE_URL": f"postgres://portal:{password}@127.0.0.1:{port}/obd",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    page = result.stdout
    assert "OperationalError" in page  # the page was rendered, traceback, settings and META
    assert "DATABASE_URL" in page and "DATABASES" in page and "conn_params" in page
    assert f"portal:********************@127.0.0.1:{port}" in page  # the rest stays readable
    assert password not in page


# --- supported Pythons --------------------------------------------------------------------------


def test_python_3_12_and_3_13_are_supported():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    supported = SpecifierSet(project["project"]["requires-python"])
    assert supported.contains("3.12.0") and supported.contains("3.13.0")
    assert project["tool"]["ruff"]["target-version"] == "py312"  # ruff flags newer syntax


def test_the_code_parses_as_python_3_12():
    sources = [ROOT / "manage.py", *ROOT.glob("calls/**/*.py"), *ROOT.glob("obdportal/**/*.py")]
    sources += ROOT.glob("tests/**/*.py")
    for path in sources:
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 12))


def make_python(tmp_path: Path, **interpreters: bool) -> subprocess.CompletedProcess:
    """What the Makefile's PYTHON is on a PATH holding only `interpreters`: fakes that pass its
    version check (True: 3.12 or newer) or fail it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, recent in interpreters.items():
        fake = bin_dir / name.replace("_", ".")
        fake.write_text(f"#!/bin/sh\nexit {0 if recent else 1}\n")
        fake.chmod(0o755)
    make = shutil.which("make")
    assert make
    return subprocess.run(
        [make, "-s", "--eval", "print-python: ; @echo $(PYTHON)", "print-python"],
        cwd=ROOT,
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("interpreters", "chosen"),
    [
        ({"python3_13": True, "python3_12": True, "python3": True}, "python3.13"),
        ({"python3_12": True, "python3": True}, "python3.12"),
        ({"python3_13": False, "python3_12": True}, "python3.12"),  # a shim with no 3.13 behind
        ({"python3": True}, "python3"),
    ],
)
def test_the_makefile_finds_a_python_by_name(tmp_path, interpreters, chosen):
    result = make_python(tmp_path, **interpreters)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "bin" / chosen)


def test_the_makefile_refuses_a_python_older_than_3_12(tmp_path):
    result = make_python(tmp_path, python3=False)
    assert result.returncode != 0
    assert "No Python 3.12 or newer on PATH" in result.stderr
