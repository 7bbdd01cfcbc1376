"""The webhook door is served before the browser's middleware (obdportal/lean_door.py); every
other path still runs all of it."""

import pytest
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from calls.models import CallEvent
from tests.helpers.webhooks import deliver, push

BROWSER_ONLY_HEADERS = ["Content-Security-Policy", "X-Frame-Options", "Vary"]


def test_the_door_answers_with_no_cookie_and_no_browser_headers(provider_client, call):
    response = deliver(provider_client, push(status="BUSY"))

    assert response.status_code == 202
    assert not response.cookies  # no session, no CSRF token
    assert [h for h in BROWSER_ONLY_HEADERS if h in response.headers] == []
    # SecurityMiddleware still runs first: what matters to any client is kept.
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Content-Length"] == str(len(response.content))


def test_a_logged_in_browser_gets_no_session_refresh_and_no_way_in_without_the_secret(
    agent_client, call
):
    refused = deliver(agent_client, push(status="BUSY"), headers={})
    accepted = deliver(agent_client, push(status="BUSY"))

    assert refused.status_code == 401  # a session is no credential at the door
    assert accepted.status_code == 202  # and a POST without a CSRF token is no reason to refuse
    assert not refused.cookies and not accepted.cookies
    assert CallEvent.objects.count() == 1


def test_the_door_refuses_a_wrong_secret_before_reading_anything(provider_client, call):
    response = deliver(
        provider_client, push(status="BUSY"), headers={"Authorization": "Bearer guess"}
    )

    assert response.status_code == 401
    assert not response.cookies
    assert not CallEvent.objects.exists()


def test_the_log_in_page_still_runs_every_browser_middleware(db):
    response = Client().get("/accounts/login/")

    assert response.status_code == 200
    assert "csrftoken" in response.cookies
    assert "script-src" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Cookie" in response.headers["Vary"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_page_still_asks_for_a_log_in(db):
    response = Client().get("/")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/")


def test_a_path_next_to_the_door_goes_through_the_browser_stack(db):
    response = Client(enforce_csrf_checks=True).post(
        "/webhooks/mobtexting/extra/", b"{}", content_type="application/json"
    )

    assert response.status_code == 404
    assert [h for h in BROWSER_ONLY_HEADERS if h not in response.headers] == []
    assert not CallEvent.objects.exists()


@login_not_required
def elsewhere(request: HttpRequest) -> HttpResponse:
    return HttpResponse("elsewhere")


urlpatterns = [path("elsewhere/", elsewhere)]  # a URLconf without the door, for the test below


@pytest.mark.urls(__name__)
def test_under_a_urlconf_without_the_door_every_request_goes_the_usual_way(db):
    response = Client().get("/elsewhere/")

    assert (response.status_code, response.content) == (200, b"elsewhere")
