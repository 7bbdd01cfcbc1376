"""What obdportal/settings.py turns on for every page: a strict Content-Security-Policy whose
nonce is on the htmx script, and login throttling (django-axes)."""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client

from tests.clock import pinned_now
from tests.helpers.portal import logged_in

LOGIN = "/accounts/login/"


# --- Content-Security-Policy ----------------------------------------------------------------------


def csp_directives(response) -> dict[str, list[str]]:
    policy_text = response["Content-Security-Policy"]
    directives = {}
    for part in policy_text.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.mark.parametrize(("url", "who"), [(LOGIN, None), ("/calls/", "agent")])
def test_portal_pages_send_a_strict_csp_whose_nonce_is_on_the_htmx_script(db, request, url, who):
    client = logged_in(request.getfixturevalue(who)) if who else Client()
    response = client.get(url)
    assert response.status_code == 200
    directives = csp_directives(response)

    script_src = directives["script-src"]
    nonces = [v for v in script_src if v.startswith("'nonce-")]
    assert "'self'" in script_src and len(nonces) == 1
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "'unsafe-inline'" not in directives.get("default-src", [])
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]

    nonce = nonces[0].removeprefix("'nonce-").removesuffix("'")
    html = response.content.decode()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    htmx = [attrs for attrs, _ in scripts if "htmx" in attrs]
    assert len(htmx) == 1 and f'nonce="{nonce}"' in htmx[0]
    for attrs, _ in scripts:
        if "src=" not in attrs:  # inline: only allowed with this response's nonce
            assert f'nonce="{nonce}"' in attrs, attrs
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html), "the CSP blocks inline handlers"


def test_each_response_gets_a_fresh_nonce(agent):
    client = logged_in(agent)
    first, second = (csp_directives(client.get("/calls/"))["script-src"] for _ in range(2))
    assert first != second


# --- login throttling -----------------------------------------------------------------------------


def log_in(client: Client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.fixture
def locked_out(client, agent, settings) -> Client:
    """Five wrong passwords for `agent` from 127.0.0.1."""
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "agent", "not-the-password")
    return client


def assert_refused(response, client: Client) -> None:
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_after_five_wrong_passwords_even_the_right_one_is_refused(locked_out):
    assert_refused(log_in(locked_out, "agent", "pw-agent"), locked_out)
    assert locked_out.get("/calls/").status_code == 302  # still not logged in


@pytest.mark.parametrize(
    ("username", "address"),
    [
        pytest.param("supervisor", "127.0.0.1", id="another username from the same address"),
        pytest.param("agent", "10.20.30.40", id="the same username from another address"),
    ],
)
def test_a_lock_out_does_not_lock_anyone_else(locked_out, supervisor, username, address):
    other = Client()
    response = log_in(other, username, f"pw-{username}", address)
    assert response.status_code == 302 and response["Location"] == "/"
    assert other.get("/calls/").status_code == 200
    again = Client()
    assert_refused(log_in(again, "agent", "pw-agent"), again)  # the pair itself stays locked


def test_after_the_cool_off_the_right_password_works_again(locked_out, settings):
    assert_refused(log_in(locked_out, "agent", "pw-agent"), locked_out)
    past = pinned_now() - settings.AXES_COOLOFF_TIME - timedelta(minutes=1)
    assert AccessAttempt.objects.update(attempt_time=past) == 1
    response = log_in(locked_out, "agent", "pw-agent")
    assert response.status_code == 302 and response["Location"] == "/"
    assert locked_out.get("/calls/").status_code == 200


def test_a_successful_log_in_clears_earlier_failures(client, agent, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "agent", "not-the-password")
    assert log_in(client, "agent", "pw-agent").status_code == 302
    assert not AccessAttempt.objects.filter(username="agent", failures_since_start__gt=0).exists()
