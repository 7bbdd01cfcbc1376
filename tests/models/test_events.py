"""Webhook deliveries as CallEvents (calls/models/events.py) and their outcome on the call
(CallLog.apply_outcome), driven through the webhook door: matching a delivery to its call, the
outcome each provider status gives, duplicates, concurrent deliveries, and retry attempts in any
order, where the latest attempt decides and an answered call stays answered."""

import threading
from datetime import UTC, datetime, timedelta
from itertools import permutations

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from calls.models import CallEvent, CallLog, DoNotCall
from calls.models.events import apply_events
from calls.provider.base import SendResult
from tests.clock import pinned_now
from tests.helpers.webhooks import (
    CALL_ID,
    DAY,
    PROVIDER_STATUSES,
    apply_stored,
    decided_by,
    deliver,
    deliver_at_once,
    final_state,
    provider_time,
    push,
)


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


# --- matching a delivery to its call --------------------------------------------------------------


def test_it_matches_by_mid_equal_to_the_provider_id(provider_client, call):
    response = deliver(provider_client, push(mid=CALL_ID))

    assert response.status_code == 202
    assert CallEvent.objects.get().call == call


def test_it_matches_by_the_compose_id(provider_client, call, make_call):
    make_call("11111111-2222-3333-4444-555555555555")

    response = deliver(provider_client, {"id": CALL_ID, "status": "BUSY"})

    assert response.status_code == 202
    assert CallEvent.objects.get().call == call


@pytest.mark.parametrize(
    ("stored", "delivered"),
    [(f"{CALL_ID}:1", CALL_ID), (CALL_ID, f"{CALL_ID}:1"), (f"{CALL_ID}:1", f"{CALL_ID}:1")],
    ids=["bare-to-suffixed", "suffixed-to-bare", "suffixed-to-suffixed"],
)
def test_it_matches_a_bare_uuid_and_a_suffixed_provider_id_either_way(
    provider_client, make_call, stored, delivered
):
    call = make_call(stored)

    response = deliver(provider_client, push(mid=delivered))

    assert response.status_code == 202
    assert CallEvent.objects.get().call == call


def test_it_falls_back_to_the_latest_call_in_flight_to_the_same_number_from_the_same_bridge(
    provider_client, make_call
):
    make_call("", status="unknown", submitted_at=pinned_now() - timedelta(hours=2))
    latest = make_call("", status="unknown", submitted_at=pinned_now())

    response = deliver(provider_client, push(mid=None))

    assert response.status_code == 202
    assert CallEvent.objects.get().call == latest
    latest.refresh_from_db()
    assert latest.status == "answered"


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "busy", "provider_status": "BUSY"},
        {"submitted_at": -timedelta(days=2)},
        {"to": "918867135999"},
        {"submitted_at": None},
        {"provider_id": "0f6c1f3e-0000-4000-8000-000000000000"},
    ],
    ids=["already-has-an-outcome", "too-old", "other-number", "never-sent", "knows-another-id"],
)
def test_the_fallback_ignores_calls_that_are_settled_old_or_elsewhere(
    provider_client, make_call, fields
):
    # Times are given from the test's clock, which starts only when the test does.
    fields = {"status": "unknown", "submitted_at": timedelta(0), **fields}
    if fields["submitted_at"] is not None:
        fields["submitted_at"] = pinned_now() + fields["submitted_at"]
    other = make_call(fields.pop("provider_id", ""), **fields)

    response = deliver(provider_client, push(mid=None))

    assert response.status_code == 202
    assert CallEvent.objects.get().call is None
    other.refresh_from_db()
    assert other.status == fields.get("status", "unknown")


def test_an_unknown_id_is_kept_unmatched_and_answered_202(provider_client, db):
    response = deliver(provider_client, push())

    event = CallEvent.objects.get()
    assert response.status_code == 202
    assert response.json() == {"event": event.pk}
    assert event.call is None
    assert list(CallEvent.objects.filter(call=None)) == [event]


def test_matching_an_event_again_attaches_it_once_its_call_exists(provider_client, make_call):
    deliver(provider_client, push(status="BUSY"))
    event = CallEvent.objects.get()
    assert event.call is None

    call = make_call()
    apply_events(CallEvent.objects.filter(pk=event.pk))  # the admin's "match again"

    event.refresh_from_db()
    assert event.call == call
    call.refresh_from_db()
    assert (call.status, call.provider_status) == ("busy", "BUSY")


def test_a_delivery_before_the_posts_answer_is_applied_when_the_call_learns_its_id(
    provider_client, make_call
):
    call = make_call(provider_id="", status="pending")
    assert call.begin_sending()
    deliver(provider_client, {"id": CALL_ID, "status": "BUSY"})  # no number: matched by id only
    assert CallEvent.objects.get().call is None

    call.record_submission(
        SendResult(status="queued", http_status=200, provider_id=CALL_ID, body="{}"), {}
    )
    apply_stored()

    call.refresh_from_db()
    assert CallEvent.objects.get().call == call
    assert (call.status, call.provider_status) == ("busy", "BUSY")


def test_a_redelivery_of_an_unmatched_event_matches_once_the_call_exists(
    provider_client, make_call
):
    assert deliver(provider_client, push()).status_code == 202
    call = make_call()

    assert deliver(provider_client, push()).status_code == 202
    assert CallEvent.objects.get().call == call


# --- outcomes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "status"), [*PROVIDER_STATUSES, ("ROBOT_HANGUP", "failed")])
def test_each_provider_status_sets_the_calls_status_and_keeps_the_raw_one(
    provider_client, call, raw, status
):
    response = deliver(provider_client, push(status=raw))

    assert response.status_code == 202
    call.refresh_from_db()
    assert (call.status, call.provider_status) == (status, raw)
    assert CallEvent.objects.get().raw_status == raw


def test_an_unknown_status_for_an_unknown_call_is_stored_not_an_error(provider_client, db):
    response = deliver(provider_client, push(status="ROBOT_HANGUP"))

    event = CallEvent.objects.get()
    assert response.status_code == 202
    assert (event.raw_status, event.outcome, event.parse_error) == ("ROBOT_HANGUP", "failed", "")


def test_a_delivery_without_status_is_attached_but_changes_nothing(provider_client, call):
    response = deliver(provider_client, push(status=None))

    assert response.status_code == 202
    assert CallEvent.objects.get().call == call
    assert final_state(call)["status"] == "queued"


def test_it_reads_naive_provider_times_in_the_configured_zone(provider_client, call, settings):
    settings.OBD_PROVIDER_TIMEZONE = "Asia/Kolkata"

    deliver(provider_client, push(start_at=f"{DAY} 16:27:39", end_at=f"{DAY} 16:27:55"))

    state = final_state(call)
    assert timezone.is_aware(state["started_at"])
    assert state["started_at"] == provider_time("16:27:39")
    assert state["started_at"] == datetime(2026, 11, 20, 10, 57, 39, tzinfo=UTC)
    assert state["ended_at"] == provider_time("16:27:55")


def test_another_provider_zone_moves_the_same_naive_time(provider_client, call, settings):
    settings.OBD_PROVIDER_TIMEZONE = "Europe/London"

    deliver(provider_client, push(start_at=f"{DAY} 16:27:39"))

    assert final_state(call)["started_at"] == provider_time("16:27:39", "Europe/London")


def test_an_audio_call_takes_its_outcome_the_same_way(provider_client, make_call, sound):
    call = make_call(flow=None, audio=sound)

    deliver(provider_client, push(status="NOANSWER"))

    assert final_state(call)["status"] == "no_answer"


# --- duplicates -----------------------------------------------------------------------------------


def test_a_stored_delivery_holds_the_models_defaults_in_every_column_it_does_not_bring(db):
    from calls.models.events import STORED_COLUMNS

    before = timezone.now()
    stored = CallEvent.objects.get(pk=CallEvent.objects.store(source="webhook", body=b"{}"))
    fresh = CallEvent()

    for field in CallEvent._meta.concrete_fields:
        if not field.primary_key and field.name not in STORED_COLUMNS:
            assert getattr(stored, field.attname) == getattr(fresh, field.attname), field.name
    assert (stored.body, stored.applied_at) == ("{}", None)
    assert before <= stored.received_at <= timezone.now()


def test_the_same_delivery_twice_is_stored_once_and_counted(provider_client, call):
    first = deliver(provider_client, push())
    outcome_at = CallLog.objects.get().outcome_at
    second = deliver(provider_client, push())

    event = CallEvent.objects.get()
    assert (first.status_code, second.status_code) == (202, 202)
    assert event.deliveries == 2
    assert event.call == call
    assert final_state(call)["attempts"] == 1
    assert call.outcome_at == outcome_at


def test_an_unmatched_delivery_twice_is_stored_once_and_accepted_both_times(provider_client, db):
    codes = [deliver(provider_client, push()).status_code for _ in range(2)]

    assert codes == [202, 202]
    assert CallEvent.objects.get().deliveries == 2


def test_an_unreadable_delivery_twice_is_stored_once_and_accepted_both_times(provider_client, db):
    codes = [deliver(provider_client, b"not json").status_code for _ in range(2)]

    assert codes == [202, 202]
    assert CallEvent.objects.get().deliveries == 2


# --- concurrent deliveries, on the real database with real transactions ---------------------------


def test_the_same_delivery_at_the_same_time_is_stored_once(transactional_db, call):
    codes = deliver_at_once([push(), push()])

    event = CallEvent.objects.get()
    assert codes == [202, 202]
    assert event.deliveries == 2
    assert event.call == call
    assert final_state(call) == decided_by(push(), attempts=1)


def test_different_deliveries_at_the_same_time_are_all_stored(transactional_db, make_call):
    ids = [f"00000000-0000-0000-0000-00000000000{n}" for n in range(6)]
    calls = [make_call(provider_id) for provider_id in ids]

    codes = deliver_at_once([push(mid=provider_id, status="BUSY") for provider_id in ids])

    assert codes == [202] * len(ids)
    assert CallEvent.objects.count() == len(ids)
    for call in calls:
        assert final_state(call)["status"] == "busy"
        assert call.events.count() == 1


def test_retry_attempts_at_the_same_time_end_answered(transactional_db, call):
    codes = deliver_at_once([attempt("NOANSWER", "10:00"), attempt("ANSWER", "10:30", 40)])

    assert codes == [202, 202]
    state = final_state(call)
    assert (state["status"], state["attempts"]) == ("answered", 2)
    assert state["started_at"] == provider_time("10:30")


# --- retry attempts (interval) and out-of-order arrival -------------------------------------------


def test_each_retry_attempt_is_its_own_event_and_the_later_one_decides(provider_client, call):
    deliver(provider_client, attempt("NOANSWER", "10:00"))
    deliver(provider_client, attempt("BUSY", "10:30"))

    assert CallEvent.objects.filter(call=call).count() == 2
    state = final_state(call)
    assert (state["status"], state["provider_status"], state["attempts"]) == ("busy", "BUSY", 2)
    assert state["started_at"] == provider_time("10:30")


@pytest.mark.parametrize("unanswered_start", ["10:00", "11:00"], ids=["earlier", "later"])
def test_an_answered_attempt_is_never_replaced_by_an_unanswered_one_delivered_later(
    provider_client, call, unanswered_start
):
    answered = attempt("ANSWER", "10:30", 42)

    deliver(provider_client, answered)
    deliver(provider_client, attempt("NOANSWER", unanswered_start))

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
def test_attempts_in_any_arrival_order_end_in_the_same_state(
    provider_client, call, attempts, deciding
):
    for payload in attempts:
        assert deliver(provider_client, payload).status_code == 202

    assert final_state(call) == decided_by(deciding, attempts=3)


def test_keys_told_by_a_delivery_are_stored_once_and_a_stop_key_opts_the_number_out(
    provider_client, call
):
    call.flow.choices = {"1": "confirm", "9": "stop calling me"}
    call.flow.stop_key = "9"
    call.flow.save()

    deliver(provider_client, push(status="ANSWER", dtmf="1,9"))
    deliver(provider_client, push(status="ANSWER", dtmf="1", start_at=f"{DAY} 10:05:00"))

    call.refresh_from_db()
    assert call.keypresses == "19"  # the first told wins; a later one changes nothing
    entry = DoNotCall.objects.get()
    assert (entry.number, entry.source) == (call.to, "keypress")
    assert f"on call #{call.pk}" in entry.reason


@pytest.mark.django_db
def test_the_dedupe_key_has_one_index_its_unique_one():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "calls_callevent")
    on_key = [c for c in constraints.values() if c["columns"] == ["dedupe_key"]]
    assert [c["unique"] for c in on_key] == [True]


def _hold_the_write_lock(held: threading.Event, release: threading.Event) -> None:
    """Another writer, in its own thread and connection: a transaction that has taken the
    database's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: the events' table)."""
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                connection.cursor().execute("LOCK TABLE calls_callevent IN EXCLUSIVE MODE")
            held.set()
            release.wait(5)
    finally:
        connection.close()


def _store_beside_a_writer(release_after: float) -> int:
    held, release = threading.Event(), threading.Event()
    writer = threading.Thread(target=_hold_the_write_lock, args=(held, release))
    writer.start()
    assert held.wait(5)
    threading.Timer(release_after, release.set).start()
    try:
        return CallEvent.objects.store(source="webhook", body=b'{"status": "ANSWER"}')
    finally:
        release.set()
        writer.join(5)


@pytest.mark.django_db(transaction=True)
def test_a_delivery_stored_while_another_writer_holds_the_lock_waits_its_turn():
    asked = []
    with connection.execute_wrapper(
        lambda execute, sql, *args: (asked.append(sql), execute(sql, *args))[1]
    ):
        pk = _store_beside_a_writer(release_after=0.1)

    assert CallEvent.objects.filter(pk=pk, applied_at=None).exists()
    if connection.vendor == "sqlite":
        # Asked for the lock again and again, not on SQLite's back-off (1, 3, 8, 18 ms…)...
        assert sum("INSERT INTO" in sql for sql in asked) > 5
        # ...and the connection waits as configured again for everything else.
        timeout = connection.settings_dict["OPTIONS"]["timeout"]
        assert connection.cursor().execute("PRAGMA busy_timeout").fetchone() == (timeout * 1000,)


@pytest.mark.django_db(transaction=True)
def test_a_delivery_gives_up_waiting_for_the_lock_after_the_timeout(monkeypatch):
    if connection.vendor != "sqlite":
        monkeypatch.setitem(connection.settings_dict, "OPTIONS", {"options": "-c lock_timeout=100"})
        connection.close()  # the next connection waits 0.1 s for a lock
    else:
        monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.1)

    try:
        with pytest.raises(OperationalError):
            _store_beside_a_writer(release_after=2)

        assert not CallEvent.objects.exists()
    finally:
        connection.close()  # the next test's connection waits for locks as configured again
