"""The provider's door, /webhooks/mobtexting/, through Django's test client and the real database."""

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import permutations
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from calls.models import CallEvent, CallLog

URL = "/webhooks/mobtexting/"
SECRET = "hook-secret"
AUTH = {"Authorization": f"Bearer {SECRET}"}
CALL_ID = "3b69aca9-3b55-4e2d-bfe0-02b910dbe156"
BRIDGE = "918068287602"  # the conftest bridge
TO = "918867135123"
DAY = "2026-11-20"
OUTCOME_FIELDS = [
    "status",
    "provider_status",
    "started_at",
    "ended_at",
    "duration",
    "recording_url",
    "attempts",
]
OUTCOMES = {"ANSWER": "answered", "NOANSWER": "no_answer", "BUSY": "busy", "CONGESTION": "failed"}


def push(**fields) -> dict:
    """A standard OBD push (§4.2) about CALL_ID; a field given as None is left out."""
    payload = {
        "bridge": BRIDGE,
        "from": BRIDGE,
        "to": TO,
        "source": "OBD",
        "mid": CALL_ID,
        "flow_id": "24",
        "start_at": f"{DAY} 10:00:00",
        "end_at": f"{DAY} 10:00:23",
        "duration": "23",
        "status": "ANSWER",
        "recording_url": "https://rec.example/a.mp3",
    }
    payload.update(fields)
    return {key: value for key, value in payload.items() if value is not None}


def attempt(status: str, start: str, duration: int = 0, **fields) -> dict:
    """One attempt of a call with retries, started at `start` (HH:MM, provider time)."""
    return push(
        status=status,
        start_at=f"{DAY} {start}:00",
        end_at=f"{DAY} {start}:{duration:02d}",
        duration=str(duration),
        recording_url=f"https://rec.example/{start}.mp3" if duration else "",
        **fields,
    )


def provider_time(hh_mm: str, zone: str = "Asia/Kolkata") -> datetime:
    return datetime.fromisoformat(f"{DAY}T{hh_mm}").replace(tzinfo=ZoneInfo(zone))


def deliver(
    client: Client,
    payload: dict | bytes,
    *,
    query: str = "",
    headers: dict | None = None,
    content_type: str = "application/json",
):
    """POST one delivery the way the provider does: JSON with the shared secret."""
    body = json.dumps(payload) if isinstance(payload, dict) else payload
    return client.post(
        f"{URL}?{query}" if query else URL,
        body,
        content_type=content_type,
        headers=AUTH if headers is None else headers,
    )


def decided_by(payload: dict, *, attempts: int) -> dict:
    """The call's state when this attempt decided its outcome: every detail comes from it."""
    return {
        "status": OUTCOMES[payload["status"]],
        "provider_status": payload["status"],
        "started_at": provider_time(payload["start_at"][11:]),
        "ended_at": provider_time(payload["end_at"][11:]),
        "duration": int(payload["duration"]),
        "recording_url": payload["recording_url"],
        "attempts": attempts,
    }


def final_state(call: CallLog) -> dict:
    """What a person sees of the call's outcome, fresh from the database."""
    call.refresh_from_db()
    return {name: getattr(call, name) for name in OUTCOME_FIELDS}


@pytest.fixture
def provider() -> Client:
    """The provider's side of the door: not logged in, and with CSRF checks on."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def make_call(bridge, otp_flow):
    def make(provider_id: str = CALL_ID, **fields) -> CallLog:
        fields = {"bridge": bridge, "to": TO, "flow": otp_flow, "status": "queued", **fields}
        return CallLog.objects.create(
            provider_id=provider_id, provider_key=provider_id.split(":")[0], **fields
        )

    return make


@pytest.fixture
def call(make_call) -> CallLog:
    return make_call()


# Who may knock


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": SECRET},
        {"Authorization": f"Basic {SECRET}"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {SECRET}x"},
    ],
    ids=["missing", "wrong", "no-scheme", "basic", "empty", "longer"],
)
def test_it_refuses_a_delivery_without_the_right_secret_and_stores_nothing(provider, call, headers):
    response = deliver(provider, push(), headers=headers)

    assert response.status_code == 401
    assert not CallEvent.objects.exists()
    call.refresh_from_db()
    assert call.status == "queued"


def test_it_refuses_everything_when_no_secret_is_set_outside_the_sandbox(provider, call, settings):
    settings.OBD_WEBHOOK_SECRET = ""
    settings.OBD_SANDBOX = False

    assert deliver(provider, push(), headers={"Authorization": "Bearer "}).status_code == 401
    assert deliver(provider, push(), headers={}).status_code == 401
    assert not CallEvent.objects.exists()


def test_the_secret_never_appears_in_the_logs(provider, call, caplog):
    caplog.set_level(logging.DEBUG)

    refused = deliver(provider, push(), headers={"Authorization": f"Bearer {SECRET}-typo"})
    accepted = deliver(provider, push())

    assert (refused.status_code, accepted.status_code) == (401, 200)
    assert caplog.records, "the refusal and the delivery should both be logged"
    logged = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    assert SECRET not in logged
    assert SECRET.encode() not in refused.content + accepted.content


def test_it_needs_no_login_and_no_csrf_token(provider, call):
    response = deliver(provider, push())

    assert response.status_code == 200
    assert response.json() == {"event": CallEvent.objects.get().pk, "matched": True}


# The verification handshake (§4.6)


@pytest.mark.parametrize("headers", [{}, AUTH], ids=["token-only", "token-and-secret"])
def test_it_echoes_the_challenge_when_the_verification_token_is_right(provider, db, headers):
    response = deliver(
        provider,
        {"validation_key": "k-123", "challenge": "abc"},
        query="token=verify-me",
        headers=headers,
    )

    assert response.status_code == 200
    assert response.json() == {"challenge": "abc"}


def test_it_does_not_echo_the_challenge_for_a_wrong_token(provider, db):
    body = {"validation_key": "k-123", "challenge": "abc"}

    stranger = deliver(provider, body, query="token=guess", headers={})
    with_secret = deliver(provider, body, query="token=guess")

    assert stranger.status_code == 401
    assert b"abc" not in stranger.content
    assert with_secret.status_code in (200, 202)
    assert "challenge" not in with_secret.json()


def test_a_verification_request_without_a_challenge_is_a_bad_request(provider, db):
    response = deliver(provider, {"validation_key": "k-123"}, query="token=verify-me", headers={})

    assert response.status_code == 400
    assert "challenge" not in response.json()


# Storage first


def test_it_stores_every_authenticated_delivery_as_it_came(provider, call):
    body = json.dumps(push())

    response = deliver(provider, body.encode(), query="src=obd")

    event = CallEvent.objects.get()
    assert response.status_code == 200
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
        (b'{"mid": "x", "status": "ANSWER", "start_at": "09/04/2021"}', "unreadable time"),
        (b'{"mid": "x", "status": "ANSWER", "start_at": "yesterdayZ"}', "unreadable time"),
        (b'{"mid": "x", "status": "ANSWER", "duration": "inf"}', "unreadable duration"),
        (b'{"mid": "x", "status": "ANSWER", "to": "\xff\xfe91"}', "not UTF-8"),
    ],
    ids=["not-json", "json-array", "bad-time", "bad-zulu-time", "infinite-duration", "not-utf8"],
)
def test_it_stores_an_unreadable_delivery_with_its_error_and_answers_400(
    provider, call, body, error
):
    response = deliver(provider, body)

    event = CallEvent.objects.get()
    assert response.status_code == 400
    assert response.json()["event"] == event.pk
    assert error in response.json()["error"]
    assert error in event.parse_error
    assert event.body
    assert event.call is None
    call.refresh_from_db()
    assert call.status == "queued"


def test_it_refuses_an_oversize_body_without_storing_it(provider, call, settings):
    settings.OBD_WEBHOOK_MAX_BODY = 1024
    padded = push(notes="x" * 1024)
    fits = push(notes="x" * (1024 - len(json.dumps(push(notes="")))))

    assert deliver(provider, padded).status_code == 413
    assert not CallEvent.objects.exists()
    assert deliver(provider, fits).status_code == 200


# Methods and body formats of compose webhooks (§4.4, §5)


def test_it_accepts_a_compose_get_with_values_in_the_query_string(provider, call):
    response = provider.get(URL, {"id": CALL_ID, "to": TO, "status": "BUSY"}, headers=AUTH)

    assert response.status_code == 200
    call.refresh_from_db()
    assert call.status == "busy"
    assert CallEvent.objects.get().method == "GET"


def test_it_accepts_a_compose_put_with_a_json_body(provider, call):
    body = json.dumps({"id": CALL_ID, "to": TO, "status": "NOANSWER", "duration": "0"})

    response = provider.put(URL, body, content_type="application/json", headers=AUTH)

    assert response.status_code == 200
    call.refresh_from_db()
    assert (call.status, call.duration) == ("no_answer", 0)


def test_it_accepts_a_form_encoded_compose_post(provider, call):
    body = urlencode({"id": CALL_ID, "to": TO, "status": "ANSWER", "duration": "12"})

    response = deliver(provider, body.encode(), content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    call.refresh_from_db()
    assert (call.status, call.duration) == ("answered", 12)


def test_it_accepts_a_multipart_compose_post(provider, call):
    response = provider.post(URL, {"id": CALL_ID, "to": TO, "status": "CANCEL"}, headers=AUTH)

    event = CallEvent.objects.get()
    assert event.parse_error == ""
    assert response.status_code == 200
    call.refresh_from_db()
    assert call.status == "canceled"


def test_it_accepts_the_documented_compose_url_with_other_key_names(provider, call):
    query = urlencode({"call_id": CALL_ID, "to": TO, "message_status": "BUSY"})

    response = deliver(provider, b"", query=query, content_type="")

    assert response.status_code == 200
    call.refresh_from_db()
    assert (call.status, call.provider_status) == ("busy", "BUSY")


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_it_refuses_other_methods(provider, call, method):
    response = getattr(provider, method)(URL, headers=AUTH)

    assert response.status_code == 405
    assert not CallEvent.objects.exists()


# Matching a delivery to its call


def test_it_matches_by_mid_equal_to_the_provider_id(provider, call):
    response = deliver(provider, push(mid=CALL_ID))

    assert response.status_code == 200
    assert response.json()["matched"] is True
    assert CallEvent.objects.get().call == call


def test_it_matches_by_the_compose_id(provider, call, make_call):
    make_call("11111111-2222-3333-4444-555555555555")

    response = deliver(provider, {"id": CALL_ID, "status": "BUSY"})

    assert response.status_code == 200
    assert CallEvent.objects.get().call == call


@pytest.mark.parametrize(
    ("stored", "delivered"),
    [(f"{CALL_ID}:1", CALL_ID), (CALL_ID, f"{CALL_ID}:1"), (f"{CALL_ID}:1", f"{CALL_ID}:1")],
    ids=["bare-to-suffixed", "suffixed-to-bare", "suffixed-to-suffixed"],
)
def test_it_matches_a_bare_uuid_and_a_suffixed_provider_id_either_way(
    provider, make_call, stored, delivered
):
    call = make_call(stored)

    response = deliver(provider, push(mid=delivered))

    assert response.status_code == 200
    assert CallEvent.objects.get().call == call


def test_it_falls_back_to_the_latest_call_in_flight_to_the_same_number_from_the_same_bridge(
    provider, make_call
):
    make_call("", status="unknown", created_at=timezone.now() - timedelta(hours=2))
    latest = make_call("", status="unknown")

    response = deliver(provider, push(mid=None))

    assert response.status_code == 200
    assert CallEvent.objects.get().call == latest
    latest.refresh_from_db()
    assert latest.status == "answered"


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "busy", "provider_status": "BUSY"},
        {"created_at": timezone.now() - timedelta(days=2)},
        {"to": "918867135999"},
    ],
    ids=["already-has-an-outcome", "too-old", "other-number"],
)
def test_the_fallback_ignores_calls_that_are_settled_old_or_elsewhere(provider, make_call, fields):
    other = make_call("", **{"status": "unknown", **fields})

    response = deliver(provider, push(mid=None))

    assert response.status_code == 202
    assert CallEvent.objects.get().call is None
    other.refresh_from_db()
    assert other.status == fields.get("status", "unknown")


def test_an_unknown_id_is_kept_unmatched_and_answered_202(provider, db):
    response = deliver(provider, push())

    event = CallEvent.objects.get()
    assert response.status_code == 202
    assert response.json() == {"event": event.pk, "matched": False}
    assert event.call is None
    assert list(CallEvent.objects.filter(call=None)) == [event]


def test_the_admin_rematch_action_attaches_an_early_event_and_applies_its_outcome(
    provider, make_call, admin_client
):
    deliver(provider, push())
    call = make_call()

    response = admin_client.post(
        "/admin/calls/callevent/",
        {"action": "rematch", "_selected_action": [CallEvent.objects.get().pk]},
        follow=True,
    )

    assert "1 event(s) matched to a call." in response.text
    assert CallEvent.objects.get().call == call
    assert final_state(call) == decided_by(push(), attempts=1)
    assert not CallEvent.objects.filter(call=None).exists()


def test_matching_an_event_again_attaches_it_once_its_call_exists(provider, make_call):
    deliver(provider, push(status="BUSY"))
    event = CallEvent.objects.get()
    assert event.match() is None

    call = make_call()

    assert event.match() == call
    event.refresh_from_db()
    assert event.call == call
    call.refresh_from_db()
    assert (call.status, call.provider_status) == ("busy", "BUSY")


def test_a_redelivery_of_an_unmatched_event_matches_once_the_call_exists(provider, make_call):
    assert deliver(provider, push()).status_code == 202
    call = make_call()

    assert deliver(provider, push()).status_code == 200
    assert CallEvent.objects.get().call == call


# Outcomes


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("ANSWER", "answered"),
        ("COMPLETED", "answered"),
        ("NOANSWER", "no_answer"),
        ("MISSED", "no_answer"),
        ("BUSY", "busy"),
        ("CANCEL", "canceled"),
        ("CONGESTION", "failed"),
        ("CHANUNAVAIL", "failed"),
        ("ROBOT_HANGUP", "failed"),
    ],
)
def test_each_provider_status_sets_the_calls_status_and_keeps_the_raw_one(
    provider, call, raw, status
):
    response = deliver(provider, push(status=raw))

    assert response.status_code == 200
    call.refresh_from_db()
    assert (call.status, call.provider_status) == (status, raw)
    assert CallEvent.objects.get().raw_status == raw


def test_an_unknown_status_for_an_unknown_call_is_stored_not_an_error(provider, db):
    response = deliver(provider, push(status="ROBOT_HANGUP"))

    event = CallEvent.objects.get()
    assert response.status_code == 202
    assert (event.raw_status, event.outcome, event.parse_error) == ("ROBOT_HANGUP", "failed", "")


def test_a_delivery_without_status_is_attached_but_changes_nothing(provider, call):
    response = deliver(provider, push(status=None))

    assert response.status_code == 200
    assert CallEvent.objects.get().call == call
    assert final_state(call)["status"] == "queued"


def test_the_call_page_shows_the_outcome_once_it_arrives(provider, call, agent_client):
    before = agent_client.get(call.get_absolute_url())
    deliver(provider, push(status="ANSWER"))
    after = agent_client.get(call.get_absolute_url())

    assert (before.status_code, after.status_code) == (200, 200)
    assert ">Queued<" in before.text
    assert ">Answered<" in after.text
    assert ">Answered<" not in before.text


def test_it_reads_naive_provider_times_in_the_configured_zone(provider, call, settings):
    settings.OBD_PROVIDER_TIMEZONE = "Asia/Kolkata"

    deliver(provider, push(start_at=f"{DAY} 16:27:39", end_at=f"{DAY} 16:27:55"))

    state = final_state(call)
    assert timezone.is_aware(state["started_at"])
    assert state["started_at"] == provider_time("16:27:39")
    assert state["started_at"] == datetime(2026, 11, 20, 10, 57, 39, tzinfo=UTC)
    assert state["ended_at"] == provider_time("16:27:55")


def test_another_provider_zone_moves_the_same_naive_time(provider, call, settings):
    settings.OBD_PROVIDER_TIMEZONE = "Europe/London"

    deliver(provider, push(start_at=f"{DAY} 16:27:39"))

    assert final_state(call)["started_at"] == provider_time("16:27:39", "Europe/London")


def test_an_audio_call_takes_its_outcome_the_same_way(provider, make_call, sound):
    call = make_call(flow=None, audio=sound)

    deliver(provider, push(status="NOANSWER"))

    assert final_state(call)["status"] == "no_answer"


# Duplicates


def test_the_same_delivery_twice_is_stored_once_and_counted(provider, call):
    first = deliver(provider, push())
    outcome_at = CallLog.objects.get().outcome_at
    second = deliver(provider, push())

    event = CallEvent.objects.get()
    assert (first.status_code, second.status_code) == (200, 200)
    assert event.deliveries == 2
    assert event.call == call
    assert final_state(call)["attempts"] == 1
    assert call.outcome_at == outcome_at


def test_an_unmatched_delivery_twice_is_stored_once_and_accepted_both_times(provider, db):
    codes = [deliver(provider, push()).status_code for _ in range(2)]

    assert codes == [202, 202]
    assert CallEvent.objects.get().deliveries == 2


def test_an_unreadable_delivery_twice_is_stored_once_and_refused_both_times(provider, db):
    codes = [deliver(provider, b"not json").status_code for _ in range(2)]

    assert codes == [400, 400]
    assert CallEvent.objects.get().deliveries == 2


# Concurrent deliveries, on the real database with real transactions


def deliver_at_once(payloads: list[dict]) -> list[int]:
    """Post every payload from its own thread and client, all released together."""
    start = threading.Barrier(len(payloads))

    def post(payload: dict) -> int:
        try:
            client = Client(enforce_csrf_checks=True)
            start.wait(timeout=10)
            return deliver(client, payload).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(payloads)) as pool:
        return list(pool.map(post, payloads))


def test_the_same_delivery_at_the_same_time_is_stored_once(transactional_db, call):
    codes = deliver_at_once([push(), push()])

    event = CallEvent.objects.get()
    assert codes == [200, 200]
    assert event.deliveries == 2
    assert event.call == call
    assert final_state(call) == decided_by(push(), attempts=1)


def test_different_deliveries_at_the_same_time_are_all_stored(transactional_db, make_call):
    ids = [f"00000000-0000-0000-0000-00000000000{n}" for n in range(6)]
    calls = [make_call(provider_id) for provider_id in ids]

    codes = deliver_at_once([push(mid=provider_id, status="BUSY") for provider_id in ids])

    assert codes == [200] * len(ids)
    assert CallEvent.objects.count() == len(ids)
    for call in calls:
        assert final_state(call)["status"] == "busy"
        assert call.events.count() == 1


def test_retry_attempts_at_the_same_time_end_answered(transactional_db, call):
    codes = deliver_at_once([attempt("NOANSWER", "10:00"), attempt("ANSWER", "10:30", 40)])

    assert codes == [200, 200]
    state = final_state(call)
    assert (state["status"], state["attempts"]) == ("answered", 2)
    assert state["started_at"] == provider_time("10:30")


# Retries (interval) and out-of-order arrival


def test_each_retry_attempt_is_its_own_event_and_the_later_one_decides(provider, call):
    deliver(provider, attempt("NOANSWER", "10:00"))
    deliver(provider, attempt("BUSY", "10:30"))

    assert CallEvent.objects.filter(call=call).count() == 2
    state = final_state(call)
    assert (state["status"], state["provider_status"], state["attempts"]) == ("busy", "BUSY", 2)
    assert state["started_at"] == provider_time("10:30")


@pytest.mark.parametrize("unanswered_start", ["10:00", "11:00"], ids=["earlier", "later"])
def test_an_answered_attempt_is_never_replaced_by_an_unanswered_one_delivered_later(
    provider, call, unanswered_start
):
    answered = attempt("ANSWER", "10:30", 42)

    deliver(provider, answered)
    deliver(provider, attempt("NOANSWER", unanswered_start))

    assert final_state(call) == decided_by(answered, attempts=2)


def arrival_orders(*attempts: dict, deciding: dict) -> list:
    """Every order in which the provider may deliver these attempts, all decided by `deciding`."""
    return [
        pytest.param(
            list(order),
            deciding,
            id=" ".join(f"{a['status']}@{a['start_at'][11:16]}" for a in order),
        )
        for order in permutations(attempts)
    ]


BUSY, NOANSWER, ANSWER = (
    attempt("BUSY", "10:00"),
    attempt("NOANSWER", "10:30"),
    attempt("ANSWER", "11:00", 37),
)
EARLY_ANSWER, LATE_BUSY = attempt("ANSWER", "10:00", 37), attempt("BUSY", "11:00")
LATE_CONGESTION = attempt("CONGESTION", "11:00")


@pytest.mark.parametrize(
    ("attempts", "deciding"),
    [
        *arrival_orders(BUSY, NOANSWER, ANSWER, deciding=ANSWER),
        *arrival_orders(EARLY_ANSWER, NOANSWER, LATE_BUSY, deciding=EARLY_ANSWER),
        *arrival_orders(BUSY, NOANSWER, LATE_CONGESTION, deciding=LATE_CONGESTION),
    ],
)
def test_attempts_in_any_arrival_order_end_in_the_same_state(provider, call, attempts, deciding):
    for payload in attempts:
        assert deliver(provider, payload).status_code == 200

    assert final_state(call) == decided_by(deciding, attempts=3)
