"""The webhook door (calls/door.py) against hostile and faulty requests: authentication
first, challenges that change nothing, values that do not fit, bodies that are not deliveries."""

import json
import time

import psycopg
import pytest
from django.db import connection
from django.test import Client

from calls.models import CallEvent, CallLog
from tests.helpers.webhooks import AUTH, CALL_ID, deliver, final_state, push


@pytest.fixture
def client() -> Client:
    return Client(enforce_csrf_checks=True)


# --- the verification token never stands in for the secret ---------------------------------------


def test_a_verification_token_without_the_secret_is_refused_and_changes_nothing(client, call):
    response = deliver(client, push(status="BUSY"), query="token=verify-me", headers={})

    assert response.status_code == 401
    assert not CallEvent.objects.exists()
    assert final_state(call)["status"] == "queued"


def test_a_challenge_is_echoed_only_with_the_secret_and_the_right_token(client, call):
    challenge = {"validation_key": "v", "challenge": "c-123", **push(status="BUSY")}

    right = deliver(client, challenge, query="token=verify-me")
    wrong = deliver(client, challenge, query="token=guess")

    assert (right.status_code, right.json()) == (200, {"challenge": "c-123"})
    assert (wrong.status_code, wrong.json()) == (403, {"error": "wrong verification token"})
    # A challenge is no delivery: nothing stored, no outcome applied, whatever its body says.
    assert not CallEvent.objects.exists()
    assert final_state(call)["status"] == "queued"


def test_with_no_token_configured_a_challenge_with_the_secret_is_answered(client, db, settings):
    settings.OBD_WEBHOOK_VERIFICATION_TOKEN = ""

    response = deliver(client, {"challenge": "c-9"}, query="token=anything")

    assert (response.status_code, response.json()) == (200, {"challenge": "c-9"})


def test_the_token_is_never_stored_with_a_delivery(client, call, caplog):
    response = deliver(client, push(status="BUSY"), query="source=obd&token=verify-me&x=1")

    assert response.status_code == 400  # a verification request must carry a challenge
    response = deliver(client, push(status="BUSY"), query="source=obd&x=1")
    assert response.status_code == 202
    assert CallEvent.objects.get().query == "source=obd&x=1"
    assert "verify-me" not in caplog.text


# --- values that do not fit: stored and flagged, the rest applied, never a 500 -----------------


HOSTILE = {
    "a status longer than its column": (
        {"status": "BUSY" + "Y" * 60},
        {"status": "failed"},
        "status longer than 32",
    ),
    "a recording URL over 1,000 characters": (
        {"recording_url": "https://r.example.com/" + "a" * 1100},
        {"status": "answered", "recording_url": ""},
        "recording_url is not an http(s) link",
    ),
    "a javascript: recording URL": (
        {"recording_url": "javascript:alert(document.cookie)"},
        {"status": "answered", "recording_url": ""},
        "recording_url is not an http(s) link",
    ),
    "a duration of 99999999999": (
        {"duration": "99999999999"},
        {"status": "answered", "duration": None},
        "duration out of range",
    ),
    "a start time in the year 1": (
        {"start_at": "0001-01-01 00:00:00"},
        {"status": "answered", "started_at": None},
        "start_at out of range",
    ),
}


@pytest.mark.parametrize("fields, applied, flag", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_value_that_does_not_fit_is_flagged_and_the_outcome_still_applied(
    client, call, fields, applied, flag
):
    response = deliver(client, push(**fields))

    assert response.status_code == 202
    event = CallEvent.objects.get()
    assert flag in event.problems
    state = final_state(call)
    assert {name: state[name] for name in applied} == applied


def test_a_5000_digit_number_is_flagged_and_the_outcome_still_applied(client, call):
    body = json.dumps(push(status="BUSY")).replace('"23"', "9" * 5000).encode()

    response = deliver(client, body)

    assert response.status_code == 202
    assert "unreadable duration" in CallEvent.objects.get().problems
    assert final_state(call)["status"] == "busy"


def test_a_nul_byte_in_the_body_is_stored_flagged_and_the_outcome_applied(client, call):
    body = json.dumps(push(status="BUSY", flow_id="24\x00")).encode()

    response = deliver(client, body)

    assert response.status_code == 202
    event = CallEvent.objects.get()
    assert "\x00" not in event.body and "NUL bytes removed" in event.problems
    assert final_state(call)["status"] == "busy"


def test_a_raw_nul_byte_outside_json_strings_is_stored_with_its_error(client, call):
    response = deliver(client, b'{"mid": "x"}\x00')

    assert response.status_code == 202
    event = CallEvent.objects.get()
    assert event.parse_error and "U+FFFD" in event.problems
    assert final_state(call)["status"] == "queued"


def test_deeply_nested_brackets_are_an_unreadable_delivery_not_a_crash(client, db):
    response = deliver(client, b"[" * 20000 + b"]" * 20000)

    assert response.status_code == 202
    assert CallEvent.objects.get().parse_error == "body is nested too deeply to be a delivery"


def test_a_retried_delivery_applies_its_outcome_even_if_the_first_one_did_not(client, call):
    deliver(client, push(status="BUSY"))
    CallLog.objects.filter(pk=call.pk).update(status="queued", attempts=0)  # as if lost

    response = deliver(client, push(status="BUSY"))

    assert response.status_code == 202
    assert CallEvent.objects.get().deliveries == 2
    assert final_state(call)["status"] == "busy"


def test_an_empty_status_answer_is_no_event_and_lands_in_no_inbox(client, db):
    response = deliver(client, {"status": 200, "data": []})

    assert response.status_code == 202
    event = CallEvent.objects.get()
    assert (event.outcome, event.call) == ("", None)
    assert "without rows" in event.parse_error


def test_a_delivery_for_another_calls_id_never_lands_on_ours_by_number(client, make_call):
    ours = make_call(provider_id="11111111-1111-4111-8111-111111111111")

    response = deliver(client, push(status="ANSWER", mid=CALL_ID))  # same number and bridge

    assert response.status_code == 202
    assert CallEvent.objects.get().call is None
    assert final_state(ours)["status"] == "queued"


def test_a_content_length_over_the_cap_is_refused_before_reading(client, db, settings):
    settings.OBD_WEBHOOK_MAX_BODY = 100

    response = deliver(client, push(recording_url="https://r.example.com/" + "a" * 200))

    assert response.status_code == 413
    assert not CallEvent.objects.exists()


# --- found by trying it as an attacker -----------------------------------------------------------


def test_a_body_built_to_make_the_lenient_reader_backtrack_is_answered_at_once(client, db):
    began = time.perf_counter()

    response = deliver(client, b'{"a":1' + b"X" * 60000)

    assert response.status_code == 202
    # Was 74 s for 60 KB, holding the whole process: a bound a loaded machine cannot miss by
    # chance, and a backtracking reader cannot meet.
    assert time.perf_counter() - began < 15
    assert "body is not JSON" in CallEvent.objects.get().parse_error


def test_deep_nesting_behind_a_bare_number_is_unreadable_not_a_crash(client, db):
    response = deliver(client, b'{"a":1X,"b":' + b"[" * 20000 + b"]" * 20000 + b"}")

    assert response.status_code == 202
    assert CallEvent.objects.get().parse_error == "body is nested too deeply to be a delivery"


def test_a_lone_surrogate_in_a_value_is_stored_flagged_and_never_a_500(client, call):
    response = deliver(client, b'{"mid": "' + CALL_ID.encode() + b'", "status": "BUSY\\ud800"}')

    assert response.status_code == 202
    event = CallEvent.objects.get()
    assert "lone surrogates" in event.problems
    assert final_state(call)["status"] == "failed"  # "BUSY?" is no outcome word we know


def test_a_later_delivery_that_says_less_keeps_what_is_known(client, call):
    deliver(client, push(status="ANSWER"))
    known = final_state(call)

    response = deliver(client, {"mid": CALL_ID, "status": "ANSWER"})
    flagged = deliver(client, push(status="ANSWER", duration="99999999999"))

    assert (response.status_code, flagged.status_code) == (202, 202)
    assert final_state(call) == known  # start, end, duration and recording all kept


def test_a_content_length_in_other_digits_is_no_crash(client, db):
    response = client.post(
        "/webhooks/mobtexting/",
        b"{}",
        content_type="application/json",
        headers=AUTH,
        CONTENT_LENGTH="\u00b2",
    )

    assert response.status_code < 500


# --- the door's connection, dropped by the database ------------------------------------------------


def _drop_the_connection() -> None:
    """What a database restart does to an open connection: PostgreSQL ends its server process;
    SQLite, which has no server, has its file's connection closed under Django."""
    if connection.vendor == "postgresql":
        pid = connection.connection.info.backend_pid
        with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [pid])
    else:
        connection.connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_database_dropped_costs_no_delivery(client, call, caplog):
    deliver(client, push(status="NOANSWER"))  # the door's connection is open
    _drop_the_connection()

    response = deliver(client, push(status="BUSY"))

    assert response.status_code == 202
    assert sorted(CallEvent.objects.values_list("deliveries", flat=True)) == [1, 1]
    assert "storing once more, on a new connection" in caplog.text
