"""Production start-up under a real gunicorn, and the log-in hardening a public portal needs:
lock-outs behind the TLS proxy, a throttled password change, no password reset without e-mail."""

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client

from tests.helpers.settings import read_settings

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "OBD_WEBHOOK_SECRET": secrets.token_urlsafe(24),
}


def production_env(tmp_path: Path, **env: str) -> dict[str, str]:
    """The environment of a production start: none of the developer's or the test run's settings.
    Empty values stand for missing ones (a `.env` file cannot fill them in)."""
    dropped = {"DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    return {
        **clean,
        "DJANGO_SETTINGS_MODULE": "obdportal.production",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'production.sqlite3'}",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECRET_KEY": "",
        "SECRET_KEY_FALLBACKS": "",
        "OBD_WEBHOOK_SECRET": "",
        **env,
    }


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`manage.py` as a production start runs it."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=production_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("given", "errors"),
    [
        ({}, {"calls.E001", "calls.E002"}),
        ({"OBD_WEBHOOK_SECRET": SECRETS["OBD_WEBHOOK_SECRET"]}, {"calls.E001"}),
        ({"SECRET_KEY": SECRETS["SECRET_KEY"]}, {"calls.E002"}),
        (
            {"SECRET_KEY": "insecure-dev-key-change-me-in-production", "OBD_WEBHOOK_SECRET": "x"},
            {"calls.E001"},
        ),
    ],
    ids=["neither", "no secret key", "no webhook secret", "the development key"],
)
def test_production_refuses_to_start_without_its_secrets(tmp_path, given, errors):
    result = manage(tmp_path, "check", **given)
    assert result.returncode != 0
    named = set(re.findall(r"calls\.E\d{3}", result.stderr))
    assert named == errors, result.stderr


def test_production_passes_the_deploy_check_with_its_secrets(tmp_path):
    result = manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        ALLOWED_HOSTS="portal.example.com",
        **SECRETS,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ONE_WORKER = ["--workers", "1", "--no-control-socket"]


def start_gunicorn(tmp_path: Path, port: int, **env: str) -> subprocess.Popen[str]:
    """The Procfile's web process, one worker, on a loopback port."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "obdportal.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            *ONE_WORKER,
        ],
        cwd=ROOT,
        env=production_env(tmp_path, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    if process.poll() is None:
        process.terminate()
    try:
        return process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"OBD_WEBHOOK_SECRET": SECRETS["OBD_WEBHOOK_SECRET"]}, {"calls.E001"}),
        (
            {
                "SECRET_KEY": "insecure-dev-key-change-me-in-production",
                "OBD_WEBHOOK_SECRET": SECRETS["OBD_WEBHOOK_SECRET"],
            },
            {"calls.E001"},
        ),
        (
            {"SECRET_KEY": "short-but-secret-k3y", "OBD_WEBHOOK_SECRET": "hook-s3cret-value"},
            {"calls.E001"},
        ),
        ({"SECRET_KEY": SECRETS["SECRET_KEY"]}, {"calls.E002"}),
    ],
    ids=["no secret key", "the development key", "a short key", "no webhook secret"],
)
def test_gunicorn_with_production_settings_refuses_to_start_without_its_secrets(
    tmp_path, given, named
):
    server = start_gunicorn(tmp_path, free_port(), **given)
    try:
        server.wait(timeout=60)
    finally:
        out, err = stop(server)
    assert server.returncode != 0
    assert "ImproperlyConfigured: production refuses to start" in err
    assert {code for code in ("calls.E001", "calls.E002") if code in err} == named
    for value in given.values():  # the message names what is wrong, never the value
        if value != "insecure-dev-key-change-me-in-production":
            assert value not in out + err


def get(url: str, **headers: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def production_server(tmp_path) -> Iterator[str]:
    """gunicorn with production settings and its secrets, on a migrated database, behind a
    (pretend) TLS proxy that says the request was https."""
    env = {**SECRETS, "SECURE_PROXY_SSL_HEADER": "true"}
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=production_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    server = start_gunicorn(tmp_path, port, **env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        assert server.poll() is None, stop(server)[1]
        yield url
    finally:
        out, err = stop(server)
        for value in SECRETS.values():
            assert value not in out + err


def test_gunicorn_with_production_settings_and_its_secrets_serves_healthz(production_server):
    status, body = get(f"{production_server}/healthz")
    health = json.loads(body)
    # No worker or engine runs beside this server: it answers, and says so.
    assert (status, health["database"], health["status"]) == (503, "ok", "failing"), body
    assert "No engine is running: periodic jobs and webhook outcomes wait." in health["problems"]


def test_production_refuses_an_unauthenticated_webhook(production_server):
    request = urllib.request.Request(
        f"{production_server}/webhooks/mobtexting/",
        data=b'{"id": "x"}',
        headers={"Content-Type": "application/json", "X-Forwarded-Proto": "https"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401


# --- log-in lock-out behind the TLS proxy --------------------------------------------------------

PROXY = "10.0.0.2"  # what REMOTE_ADDR says for every request behind the proxy
STRANGER, COLLEAGUE = "198.51.100.7", "203.0.113.9"


AXES_IP = ("AXES_IPWARE_PROXY_COUNT", "AXES_IPWARE_META_PRECEDENCE_ORDER")


@pytest.fixture
def behind_one_proxy(settings) -> None:
    """The axes settings that OBD_TRUSTED_PROXY_COUNT=1 gives, read as production reads them."""
    for name, value in read_settings(*AXES_IP, OBD_TRUSTED_PROXY_COUNT="1").items():
        setattr(settings, name, value)


def log_in(username: str, password: str, forwarded_for: str) -> int:
    response = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for).post(
        "/accounts/login/", {"username": username, "password": password}
    )
    return response.status_code


def test_without_a_proxy_count_lock_outs_use_the_connections_address():
    assert read_settings(*AXES_IP) == {
        "AXES_IPWARE_PROXY_COUNT": None,
        "AXES_IPWARE_META_PRECEDENCE_ORDER": ["REMOTE_ADDR"],
    }


def test_behind_the_proxy_failed_logins_lock_out_the_stranger_not_a_colleague(
    behind_one_proxy, settings, agent
):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in("agent", "guess", forwarded_for=STRANGER)
    assert log_in("agent", "pw-agent", forwarded_for=STRANGER) == 429
    assert log_in("agent", "pw-agent", forwarded_for=COLLEAGUE) == 302


def test_behind_the_proxy_a_forged_forwarded_for_cannot_lock_out_the_address_it_names(
    behind_one_proxy, settings, agent
):
    # The proxy appends the stranger's real address to whatever header the stranger sent.
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        log_in("agent", "guess", forwarded_for=f"{COLLEAGUE}, {STRANGER}")
    assert log_in("agent", "pw-agent", forwarded_for=COLLEAGUE) == 302


# --- password change and reset ------------------------------------------------------------------


def change_password(client: Client, old: str, new: str = "A-new-long-passphrase-42"):
    return client.post(
        "/accounts/password_change/",
        {"old_password": old, "new_password1": new, "new_password2": new},
    )


def test_a_right_old_password_changes_the_password(agent, agent_client):
    response = change_password(agent_client, "pw-agent")
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.check_password("A-new-long-passphrase-42")


def test_wrong_old_passwords_lock_the_password_change_like_failed_logins(
    settings, agent, agent_client, supervisor
):
    for attempt in range(1, settings.AXES_FAILURE_LIMIT + 1):
        response = change_password(agent_client, f"guess-{attempt}")
    assert response.status_code == 429  # the lock-out page, as for log-ins
    response = change_password(agent_client, "pw-agent")  # even the right one, until cool-off
    assert response.status_code == 200
    assert "Too many wrong passwords" in response.content.decode()
    agent.refresh_from_db()
    assert agent.check_password("pw-agent")
    supervisor_client = Client()
    supervisor_client.force_login(supervisor)
    assert change_password(supervisor_client, "pw-supervisor").status_code == 302


def test_a_wrong_old_password_is_recorded_without_the_passwords_typed(agent, agent_client):
    change_password(agent_client, "a-wrong-guess", new="Typed-new-passphrase-77")
    attempt = AccessAttempt.objects.get(username="agent")
    assert attempt.failures_since_start == 1
    for typed in ("a-wrong-guess", "Typed-new-passphrase-77", "pw-agent"):
        assert typed not in attempt.post_data


def test_the_admins_password_change_goes_to_the_throttled_one(supervisor):
    client = Client()
    client.force_login(supervisor)
    response = client.get("/admin/password_change/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_change/"


@pytest.mark.parametrize(
    "path", ["/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/"]
)
def test_password_reset_pages_do_not_exist_without_email(client, db, path):
    assert client.get(path).status_code == 404


def test_password_reset_mails_a_link_when_email_is_configured(settings, client, agent):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    agent.email = "agent@example.com"
    agent.save()
    assert client.get("/accounts/password_reset/").status_code == 200
    response = client.post("/accounts/password_reset/", {"email": "agent@example.com"})
    assert response.status_code == 302
    assert [message.to for message in mail.outbox] == [["agent@example.com"]]


def test_email_url_configures_the_mailer():
    read = read_settings("MAILERS", EMAIL_URL="smtp+tls://portal:mail-pass@mail.example.com:587")
    assert read == {
        "MAILERS": {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {
                    "host": "mail.example.com",
                    "port": 587,
                    "username": "portal",
                    "password": "mail-pass",
                    "use_tls": True,
                },
            }
        }
    }
    assert read_settings("MAILERS") == {"MAILERS": None}  # none: Django's W001 would warn
