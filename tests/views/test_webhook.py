"""The provider's door, /webhooks/mobtexting/ (calls/views.py mobtexting_webhook), through
Django's test client and the real database: who may knock, the verification handshake, storing
every delivery first, the methods and body formats, and its log line."""

import json
import logging
from urllib.parse import urlencode

import pytest
from django.http import JsonResponse

from calls.models import CallEvent, CallLog
from tests.helpers.answers import QUEUED
from tests.helpers.portal import WEBHOOK_SECRET, assert_no_secrets_in
from tests.helpers.webhooks import (
    AUTH,
    CALL_ID,
    TO,
    URL,
    apply_stored,
    deliver,
    provider_time,
    push,
)

# --- who may knock --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": WEBHOOK_SECRET},
        {"Authorization": f"Basic {WEBHOOK_SECRET}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {WEBHOOK_SECRET}x"},
    ],
    ids=["missing", "wrong", "no-scheme", "basic", "empty", "longer"],
)
def test_it_refuses_a_delivery_without_the_right_secret_and_stores_nothing(
    provider_client, call, headers
):
    response = deliver(provider_client, push(), headers=headers)

    assert response.status_code == 401
    assert not CallEvent.objects.exists()
    call.refresh_from_db()
    assert call.status == "queued"


def test_it_refuses_everything_when_no_secret_is_set_outside_the_sandbox(
    provider_client, call, settings
):
    settings.OBD_WEBHOOK_SECRET = ""
    settings.OBD_SANDBOX = False

    assert deliver(provider_client, push(), headers={"Authorization": "Bearer "}).status_code == 401
    assert deliver(provider_client, push(), headers={}).status_code == 401
    assert not CallEvent.objects.exists()


def test_the_secret_never_appears_in_the_logs(provider_client, call, caplog):
    caplog.set_level(logging.DEBUG)

    refused = deliver(
        provider_client, push(), headers={"Authorization": f"Bearer {WEBHOOK_SECRET}-typo"}
    )
    accepted = deliver(provider_client, push())

    assert (refused.status_code, accepted.status_code) == (401, 202)
    assert caplog.records, "the refusal and the delivery should both be logged"
    logged = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    assert WEBHOOK_SECRET not in logged
    assert WEBHOOK_SECRET.encode() not in refused.content + accepted.content


def test_it_needs_no_login_and_no_csrf_token(provider_client, call):
    response = deliver(provider_client, push())

    assert response.status_code == 202
    assert response.json() == {"event": CallEvent.objects.get().pk}
    assert CallEvent.objects.get().call == call
    # Written by hand for speed: what JsonResponse would write, to the byte.
    expected = JsonResponse({"event": CallEvent.objects.get().pk}, status=202)
    assert (response.content, response["Content-Type"]) == (
        expected.content,
        expected["Content-Type"],
    )


# --- the verification handshake (§4.6) ------------------------------------------------------------


def test_it_echoes_the_challenge_when_the_secret_and_the_token_are_right(provider_client, db):
    response = deliver(
        provider_client, {"validation_key": "k-123", "challenge": "abc"}, query="token=verify-me"
    )

    assert response.status_code == 200
    assert response.json() == {"challenge": "abc"}
    assert not CallEvent.objects.exists()  # a challenge is no delivery


def test_it_does_not_echo_the_challenge_for_a_wrong_token(provider_client, db):
    body = {"validation_key": "k-123", "challenge": "abc"}

    stranger = deliver(provider_client, body, query="token=verify-me", headers={})
    with_secret = deliver(provider_client, body, query="token=guess")

    assert stranger.status_code == 401  # the right token never stands in for the secret
    assert b"abc" not in stranger.content
    assert with_secret.status_code == 403
    assert "challenge" not in with_secret.json()


def test_a_verification_request_without_a_challenge_is_a_bad_request(provider_client, db):
    response = deliver(provider_client, {"validation_key": "k-123"}, query="token=verify-me")

    assert response.status_code == 400
    assert "challenge" not in response.json()


# --- storage first --------------------------------------------------------------------------------


def test_it_stores_every_authenticated_delivery_as_it_came(provider_client, call):
    body = json.dumps(push())

    response = deliver(provider_client, body.encode(), query="src=obd")

    event = CallEvent.objects.get()
    assert response.status_code == 202
    assert (event.source, event.method, event.content_type) == (
        "webhook",
        "POST",
        "application/json",
    )
    assert (event.body, event.query) == (body, "src=obd")
    assert (event.provider_id, event.raw_status, event.outcome) == (CALL_ID, "ANSWER", "answered")
    assert event.started_at == provider_time("10:00")
    assert event.parsed["to"] == TO
    assert event.parsed["duration"] == 23
    assert event.parse_error == ""
    assert event.deliveries == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"<html>502 Bad Gateway</html>", "body is not JSON"),
        (b'[{"mid": "x", "status": "ANSWER"}]', "expected a JSON object"),
        (b'{"mid": "x", "status": "ANSWER", "to": "\xff\xfe91"}', "not UTF-8"),
    ],
    ids=["not-json", "json-array", "not-utf8"],
)
def test_it_stores_an_unreadable_delivery_with_its_error_and_accepts_it(
    provider_client, call, body, error
):
    response = deliver(provider_client, body)

    event = CallEvent.objects.get()
    # Accepted (a retry would be as unreadable), stored and flagged for a person to look at.
    assert response.status_code == 202
    assert response.json() == {"event": event.pk}
    assert error in event.parse_error
    assert event.body
    assert event.call is None
    call.refresh_from_db()
    assert call.status == "queued"


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        ({"start_at": "09/04/2021"}, "unreadable time"),
        ({"start_at": "yesterdayZ"}, "unreadable time"),
        ({"duration": "inf"}, "unreadable duration"),
    ],
    ids=["bad-time", "bad-zulu-time", "infinite-duration"],
)
def test_an_unreadable_field_is_flagged_and_the_rest_of_the_outcome_applied(
    provider_client, call, field, problem
):
    response = deliver(provider_client, push(status="BUSY", **field))

    event = CallEvent.objects.get()
    assert response.status_code == 202
    assert (event.parse_error, event.call) == ("", call)
    assert problem in event.problems
    call.refresh_from_db()
    assert call.status == "busy"


def test_it_refuses_an_oversize_body_without_storing_it(provider_client, call, settings):
    settings.OBD_WEBHOOK_MAX_BODY = 1024
    padded = push(notes="x" * 1024)
    fits = push(notes="x" * (1024 - len(json.dumps(push(notes="")))))

    assert deliver(provider_client, padded).status_code == 413
    assert not CallEvent.objects.exists()
    assert deliver(provider_client, fits).status_code == 202


# --- methods and body formats of compose webhooks (§4.4, §5) --------------------------------------


def test_it_accepts_a_compose_get_with_values_in_the_query_string(provider_client, call):
    response = provider_client.get(URL, {"id": CALL_ID, "to": TO, "status": "BUSY"}, headers=AUTH)
    apply_stored()

    assert response.status_code == 202
    call.refresh_from_db()
    assert call.status == "busy"
    assert CallEvent.objects.get().method == "GET"


def test_it_accepts_a_compose_put_with_a_json_body(provider_client, call):
    body = json.dumps({"id": CALL_ID, "to": TO, "status": "NOANSWER", "duration": "0"})

    response = provider_client.put(URL, body, content_type="application/json", headers=AUTH)
    apply_stored()

    assert response.status_code == 202
    call.refresh_from_db()
    assert (call.status, call.duration) == ("no_answer", 0)


def test_it_accepts_a_form_encoded_compose_post(provider_client, call):
    body = urlencode({"id": CALL_ID, "to": TO, "status": "ANSWER", "duration": "12"})

    response = deliver(
        provider_client, body.encode(), content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 202
    call.refresh_from_db()
    assert (call.status, call.duration) == ("answered", 12)


def test_it_accepts_a_multipart_compose_post(provider_client, call):
    response = provider_client.post(
        URL, {"id": CALL_ID, "to": TO, "status": "CANCEL"}, headers=AUTH
    )
    apply_stored()

    event = CallEvent.objects.get()
    assert event.parse_error == ""
    assert response.status_code == 202
    call.refresh_from_db()
    assert call.status == "canceled"


def test_it_accepts_the_documented_compose_url_with_other_key_names(provider_client, call):
    query = urlencode({"call_id": CALL_ID, "to": TO, "message_status": "BUSY"})

    response = deliver(provider_client, b"", query=query, content_type="")

    assert response.status_code == 202
    call.refresh_from_db()
    assert (call.status, call.provider_status) == ("busy", "BUSY")


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_it_refuses_other_methods(provider_client, call, method):
    response = getattr(provider_client, method)(URL, headers=AUTH)

    assert response.status_code == 405
    assert not CallEvent.objects.exists()


# --- its log line ---------------------------------------------------------------------------------


def test_a_webhook_logs_a_line_with_its_event_id_and_no_secret(caplog, client, bridge, sound):
    call = CallLog.objects.create(
        bridge=bridge,
        to="918867135123",
        audio=sound,
        status="queued",
        provider_id=QUEUED["data"][0]["id"],
        provider_key=QUEUED["data"][0]["id"],
    )
    caplog.set_level("INFO")
    delivery = {
        "bridge": bridge.number,
        "to": call.to,
        "mid": call.provider_id,
        "start_at": "2026-11-20 10:00:00",
        "end_at": "2026-11-20 10:00:23",
        "duration": "23",
        "status": "ANSWER",
    }
    response = deliver(client, delivery)
    assert response.status_code == 202
    event = CallEvent.objects.get()
    lines = [r.getMessage() for r in caplog.records if f"event={event.pk}" in r.getMessage()]
    assert lines == [f"delivery applied event={event.pk} call={call.pk} status=ANSWER"]
    assert_no_secrets_in(caplog)
