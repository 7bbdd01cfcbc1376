"""API keys (calls/models/api.py, calls/api/keys.py): a bearer key authenticates, read from the
database on every request; scopes; revocation and expiry at once; the rate limit; the admin
shows a new key once."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from calls.models import ApiKey, RateWindow
from calls.models.api import KEY_START
from tests.api.conftest import issue_key
from tests.helpers.portal import logged_in

pytestmark = pytest.mark.django_db


def test_a_request_without_a_key_is_refused_with_a_problem_saying_how_to_send_one():
    response = Client().get("/api/v1/calls")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]


def test_a_signed_in_staff_session_is_no_api_key(agent):
    response = logged_in(agent).get("/api/v1/calls")

    assert response.status_code == 401


@pytest.mark.parametrize(
    "header",
    ["Bearer obd_nope_nope", "Bearer ", "Basic abc", "Bearer obd_", "Bearer " + "x" * 5000],
)
def test_a_wrong_or_malformed_key_is_refused(api_key, header):
    assert Client(headers={"Authorization": header}).get("/api/v1/calls").status_code == 401


def test_a_key_with_its_secret_changed_is_refused_though_its_prefix_is_right(api_key, client_with):
    _, secret = api_key

    assert (
        client_with(secret[:-1] + ("A" if secret[-1] != "A" else "B"))
        .get("/api/v1/calls")
        .status_code
        == 401
    )


def test_only_a_hash_of_the_key_is_stored_and_its_prefix_is_shown(api_key):
    key, secret = api_key

    assert secret.startswith(f"{KEY_START}{key.prefix}_")
    assert secret not in key.key_hash
    assert len(secret) > 40


def test_a_revoked_key_is_refused_on_its_very_next_request(api_key, client_with):
    key, secret = api_key
    client = client_with(secret)
    assert client.get("/api/v1/calls").status_code == 200

    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())

    assert client.get("/api/v1/calls").status_code == 401


def test_an_expired_key_is_refused(client_with):
    _, secret = issue_key(expires_at=timezone.now() + timedelta(minutes=1))
    client = client_with(secret)
    assert client.get("/api/v1/calls").status_code == 200

    ApiKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert client.get("/api/v1/calls").status_code == 401


def test_a_request_records_when_the_key_was_last_used(api, api_key):
    api.get("/api/v1/calls")

    api_key[0].refresh_from_db()
    assert api_key[0].last_used_at is not None


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("get", "/api/v1/calls", "calls:read"),
        ("post", "/api/v1/calls", "calls:write"),
        ("get", "/api/v1/catalogue/flows", "catalogue:read"),
        ("post", "/api/v1/optouts", "optouts:write"),
        ("post", "/api/v1/optouts/check", "optouts:read"),
    ],
)
def test_a_key_without_the_scope_is_refused_and_told_which_scope(client_with, method, path, scope):
    resource = scope.split(":")[0]
    others = [f"{resource}:{'write' if scope.endswith('read') else 'read'}", "campaigns:read"]
    _, secret = issue_key(scopes=others)

    response = getattr(client_with(secret), method)(
        path,
        {"number": "+918867135123"} if method == "post" else None,
        content_type="application/json",
    )

    assert response.status_code == 403
    assert scope in response.json()["detail"]


def test_a_key_over_its_requests_a_minute_gets_429_with_retry_after(api, settings):
    settings.OBD_API_REQUESTS_PER_MINUTE = 3
    for _ in range(3):
        assert api.get("/api/v1/calls").status_code == 200

    response = api.get("/api/v1/calls")

    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_the_rate_limit_counts_each_key_apart(api, settings, client_with):
    settings.OBD_API_REQUESTS_PER_MINUTE = 1
    api.get("/api/v1/calls")
    _, other = issue_key(name="Helpdesk")

    assert client_with(other).get("/api/v1/calls").status_code == 200
    assert RateWindow.objects.count() == 2


def test_the_admin_shows_a_new_key_once_and_keeps_only_its_hash(admin_user):
    admin = logged_in(admin_user)

    response = admin.post(
        "/admin/calls/apikey/add/",
        {
            "name": "CRM",
            "scopes": ["calls:read", "calls:write"],
            "expires_at_0": "",
            "expires_at_1": "",
        },
    )

    key = ApiKey.objects.get()
    secret = response.context["secret"]
    assert secret.startswith(f"{KEY_START}{key.prefix}_")
    assert secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert key.created_by == admin_user and key.scopes == ["calls:read", "calls:write"]
    page = admin.get(f"/admin/calls/apikey/{key.pk}/change/").content.decode()
    assert secret not in page and f"obd_{key.prefix}_" in page
    assert (
        Client(headers={"Authorization": f"Bearer {secret}"}).get("/api/v1/calls").status_code
        == 200
    )


def test_the_admin_revokes_a_key(admin_user, api, api_key):
    logged_in(admin_user).post(
        "/admin/calls/apikey/",
        {"action": "revoke", "_selected_action": [api_key[0].pk]},
    )

    assert api.get("/api/v1/calls").status_code == 401


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_a_method_an_address_does_not_take_is_a_problem_naming_those_it_does(api, method):
    response = getattr(api, method)("/api/v1/calls")
    with_key = api.post("/api/v1/calls/1", headers={"Idempotency-Key": "k"})

    assert with_key.status_code == 405
    assert with_key["Content-Type"] == "application/problem+json"

    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"
    assert set(response["Allow"].split(", ")) == {"GET", "POST"}
    assert response.json()["detail"] == f"This address takes {response['Allow']}."


def test_head_answers_as_get_would_without_the_body_and_needs_the_key_too(api, client_with):
    get = api.get("/api/v1/calls")
    head = api.head("/api/v1/calls")

    assert (head.status_code, head["Content-Type"]) == (200, get["Content-Type"])
    assert head.content == b"" and int(head["Content-Length"]) == len(get.content) > 0
    assert client_with("obd_wrong_key").head("/api/v1/calls").status_code == 401
    assert api.head("/api/v1/calls/999999").status_code == 404


def test_a_chunked_body_is_refused_with_411_not_read_as_an_empty_one(api):
    """gunicorn hands Django a chunked body with no length, which it reads as empty: the
    client would be told its body misses every field."""
    response = api.generic(
        "POST",
        "/api/v1/calls",
        b'{"bridge": 1, "to": "+918867135123"}',
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
    )

    assert response.status_code == 411
    assert response.json()["detail"].startswith("Send the body with a Content-Length")
