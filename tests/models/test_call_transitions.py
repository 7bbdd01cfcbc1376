"""The call's state machine (calls/models/life.py): every move a compare-and-set on the table,
so a late or duplicate event never undoes a later one, whatever the order or concurrency."""

import json
import re
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection, transaction

import calls
from calls.engine.clock import LOOK_BACK
from calls.models import CallEvent, CallLog, Campaign
from calls.models.events import EARLY_WINDOW, Reached, apply_waiting
from calls.models.life import DOUBTFUL_TIME, TRANSITIONS, Mover, allowed_from
from calls.provider.base import SendResult
from calls.sealing import masked_echo
from calls.vocabulary import OUTCOMES, SETTLED, CallStatus
from tests.clock import pinned_now
from tests.helpers.webhooks import CALL_ID, final_state, provider_time, push

EVERY_MOVE = [(mover, source, to) for mover in Mover for source in CallStatus for to in CallStatus]


def test_every_move_the_table_does_not_allow_is_refused_and_changes_nothing(make_call):
    call = make_call()
    made = []
    for mover, source, to in EVERY_MOVE:
        if to in TRANSITIONS[mover].get(source, ()):
            continue
        CallLog.objects.filter(pk=call.pk).update(status=source, error="")
        if CallLog.objects.filter(pk=call.pk).move(mover, to, error="moved"):
            made.append((mover, source, to))
        call.refresh_from_db()
        assert (call.status, call.error) == (source, "")
    assert made == []


def test_every_move_the_table_allows_is_made(make_call):
    call = make_call()
    allowed = [(m, s, t) for m, s, t in EVERY_MOVE if t in TRANSITIONS[m].get(s, ())]
    for mover, source, to in allowed:
        CallLog.objects.filter(pk=call.pk).update(status=source)
        assert CallLog.objects.filter(pk=call.pk).move(mover, to) == 1
        call.refresh_from_db()
        assert call.status == to
    assert len(allowed) == 4 + 4 + 8 * 5 + 1 + 1 + 1 + 1  # the table, counted by hand


def test_a_stopped_campaign_withdraws_waiting_rows_and_never_calls_them_canceled():
    assert TRANSITIONS[Mover.CANCEL] == {CallStatus.PENDING: frozenset({CallStatus.WITHDRAWN})}
    assert allowed_from(Mover.CANCEL, CallStatus.CANCELED) == []
    # `canceled` is the provider's outcome (the caller hung up); withdrawn rows have none.
    assert CallStatus.WITHDRAWN in SETTLED and CallStatus.WITHDRAWN not in OUTCOMES
    # Only a cancel or the campaign's policy (its end time, a retry no longer allowed).
    assert not any(
        allowed_from(mover, CallStatus.WITHDRAWN)
        for mover in Mover
        if mover not in ("cancel", "policy")
    )
    assert TRANSITIONS[Mover.POLICY] == {CallStatus.PENDING: frozenset({CallStatus.WITHDRAWN})}


def test_no_one_moves_a_call_back_to_pending_but_a_person_retrying_an_unsent_call():
    assert [m for m in Mover if allowed_from(m, CallStatus.PENDING)] == [Mover.RETRY]
    assert allowed_from(Mover.RETRY, CallStatus.PENDING) == [CallStatus.ERROR]


def timed_out(provider_id: str = "") -> SendResult:
    return SendResult(status="unknown", provider_id=provider_id, error="No answer (read timeout)")


def ingest(payload: dict) -> CallEvent:
    body = json.dumps(payload).encode()
    return CallEvent.objects.ingest(source=CallEvent.Source.WEBHOOK, body=body)


def test_a_late_post_answer_keeps_the_outcome_that_arrived_first(make_call):
    call = make_call(provider_id="", status="pending")
    assert call.begin_sending()
    ingest(push(status="BUSY"))  # the webhook wins the race, found by number and bridge

    call.record_submission(timed_out(), {})

    state = final_state(call)
    assert state["status"] == "busy"
    call.refresh_from_db()
    assert (call.provider_id, call.error) == (CALL_ID, "")  # learnt from the webhook, kept


def test_a_late_post_answer_still_adds_what_it_knows(make_call):
    call = make_call(provider_id="", status="pending")
    assert call.begin_sending()
    ingest(push(status="NOANSWER"))
    answer = SendResult(status="queued", provider_id=CALL_ID, http_status=200, cost=Decimal(1))

    call.record_submission(answer, {})

    call.refresh_from_db()
    assert (call.status, call.http_status, call.cost) == ("no_answer", 200, Decimal(1))


def test_a_post_answer_after_the_sweeper_gave_up_is_recorded(make_call):
    call = make_call(provider_id="", status="unknown")

    call.record_submission(SendResult(status="queued", provider_id=CALL_ID), {})

    call.refresh_from_db()
    assert (call.status, call.provider_id) == ("queued", CALL_ID)


def test_ringing_then_busy_for_one_attempt_is_one_attempt(call):
    ingest(push(status="RINGING"))
    ingest(push(status="BUSY"))

    assert final_state(call)["attempts"] == 1
    assert final_state(call)["status"] == "busy"


def test_two_attempts_in_any_order_are_two(call):
    later = push(status="ANSWER", start_at="2026-11-20 10:30:00", end_at="2026-11-20 10:30:40")
    ingest(later)
    ingest(push(status="NOANSWER"))

    assert (final_state(call)["attempts"], final_state(call)["status"]) == (2, "answered")


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_attempt_at_once_count_once(make_call):
    """Real on PostgreSQL, where row locks are real (CI runs the suite there too)."""
    call = make_call()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def deliver(status: str) -> None:
        try:
            start.wait(timeout=10)
            ingest(push(status=status, duration="0" if status == "BUSY" else "23"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    for _ in range(5):
        CallEvent.objects.all().delete()
        CallLog.objects.filter(pk=call.pk).update(attempts=0, status="queued")
        threads = [threading.Thread(target=deliver, args=(s,)) for s in ("RINGING", "BUSY")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert final_state(call)["attempts"] == 1


def test_a_provider_answer_echoing_a_secret_is_stored_masked(make_call, otp_flow, bridge):
    call = CallLog.prepare(
        flow=otp_flow, variables={"Name": "Asha", "otp": "482913"}, bridge=bridge, to="91886713"
    )
    call.save()
    echo = {
        "status": "OK",
        "data": [{"id": CALL_ID, "variables": {"Name": "Asha", "otp": "482913"}}],
        "request": {"variables[otp]": "482913", "note": "code 482913 sent"},
    }
    call.begin_sending()

    call.record_submission(
        SendResult(status="queued", provider_id=CALL_ID, body=json.dumps(echo)),
        {"Name": "Asha", "otp": "482913"},
    )

    call.refresh_from_db()
    assert "482913" not in call.response_body
    assert json.loads(call.response_body)["data"][0]["variables"] == {
        "Name": "Asha",
        "otp": "******",
    }


def test_a_plain_text_echo_is_masked_too():
    assert masked_echo("sent otp 482913 to you", {"otp": "482913"}) == "sent otp ****** to you"


def test_a_row_whose_lease_ran_out_and_was_claimed_again_is_not_sent_by_its_first_holder(
    campaign,
):
    CallLog.objects.create(
        bridge=campaign.bridge, flow=campaign.flow, to="918867135123", campaign=campaign
    )
    [first] = campaign.claim_calls(1, timedelta(seconds=-1))  # a lease already run out
    [second] = campaign.claim_calls(1, timedelta(minutes=1))

    assert first.pk == second.pk
    assert first.begin_sending() is False
    assert second.begin_sending() is True
    assert pinned_now() - second.submitted_at < timedelta(seconds=5)


@pytest.mark.django_db(transaction=True)
def test_a_campaign_row_begun_while_its_other_holder_waited_for_the_lock_is_sent_once(campaign):
    """Both hold the same lease; one begins the POST while the other waits for the row's lock.
    The waiting one must see the row again when the lock comes (PostgreSQL rechecks only the
    conditions on the row itself: the running check must not turn them into a subquery)."""
    Campaign.objects.filter(pk=campaign.pk).update(status="running")
    CallLog.objects.create(
        bridge=campaign.bridge, flow=campaign.flow, to="918867135123", campaign=campaign
    )
    [first] = campaign.claim_calls(1, timedelta(minutes=1))
    second = CallLog.objects.get(pk=first.pk)
    won: list[bool] = []

    def begin_too() -> None:
        try:
            won.append(second.begin_sending(campaign_running=True))
        finally:
            connection.close()

    with transaction.atomic():
        assert first.begin_sending(campaign_running=True) is True
        waiting = threading.Thread(target=begin_too)
        waiting.start()
        waiting.join(timeout=0.5)  # on PostgreSQL it waits for this row's lock meanwhile
    waiting.join()
    assert won == [False]
    assert CallLog.objects.get(pk=first.pk).submitted_at == first.submitted_at


def test_a_refusal_quoting_a_secret_is_stored_and_logged_masked(otp_flow, bridge, caplog):
    call = CallLog.prepare(
        flow=otp_flow, variables={"Name": "Asha", "otp": "482913"}, bridge=bridge, to="91886713"
    )
    call.save()
    refusal = SendResult(
        status="rejected", http_status=422, error="variables[otp]: 482913 is invalid"
    )
    call.begin_sending()

    call.record_submission(refusal, {"Name": "Asha", "otp": "482913"})

    call.refresh_from_db()
    assert call.error == "variables[otp]: ****** is invalid"
    assert "482913" not in caplog.text


# --- the batch's outcomes, the lease claim, and provider times not believed -----------------


def test_an_outcome_over_a_withdrawn_call_is_refused_logged_and_changes_nothing(make_call, caplog):
    call = make_call(
        status="withdrawn", error="The campaign was stopped before this call was sent."
    )

    event = ingest(push(status="ANSWER"))

    call.refresh_from_db()
    assert (call.status, call.started_at, event.call_id) == ("withdrawn", None, call.pk)
    assert f"call outcome refused call={call.pk} status=withdrawn outcome=answered" in caplog.text


def test_a_claim_skips_calls_whose_post_began_or_whose_lease_another_holds(make_call):
    now = pinned_now()
    free = make_call(provider_id="", status="pending")
    held = make_call(provider_id="", status="pending", lease_until=now + timedelta(seconds=30))
    begun = make_call(provider_id="", status="pending", submitted_at=now)
    lapsed = make_call(provider_id="", status="pending", lease_until=now - timedelta(seconds=1))

    with transaction.atomic():
        found, leased = CallLog.objects.all().claim(10, now + timedelta(seconds=60), now)

    assert (found, sorted(c.pk for c in leased)) == (2, [free.pk, lapsed.pk])
    leases = dict(CallLog.objects.values_list("pk", "lease_until"))
    assert leases[held.pk] == now + timedelta(seconds=30) and leases[begun.pk] is None
    assert leases[free.pk] == leases[lapsed.pk] == now + timedelta(seconds=60)


def sent_call(make_call) -> CallLog:
    """A call whose POST began on the day of the deliveries (DAY, in the provider's zone)."""
    return make_call(submitted_at=provider_time("09:59"))


@pytest.mark.parametrize("first", ["far", "real"])
def test_a_delivery_dated_far_from_the_call_does_not_pin_it(make_call, first):
    """BUSY "in 2099" and a real NOANSWER, in either order: the real one decides. The far time
    is flagged on its event, kept out of the call and not counted as an attempt."""
    call = sent_call(make_call)
    far = push(status="BUSY", start_at="2099-01-01 10:00:00", end_at="2099-01-01 10:00:09")
    real = push(status="NOANSWER")

    events = [ingest(far), ingest(real)] if first == "far" else [ingest(real), ingest(far)]

    state = final_state(call)
    assert (state["status"], state["started_at"], state["attempts"]) == (
        "no_answer",
        provider_time("10:00"),
        1,
    )
    flagged = [e for e in events if e.problems]
    assert [e.raw_status for e in flagged] == ["BUSY"]
    assert DOUBTFUL_TIME in flagged[0].problems


def test_a_delivery_dated_far_from_the_call_still_tells_an_outcome_it_had_none_of(make_call):
    call = sent_call(make_call)

    ingest(push(status="BUSY", start_at="2099-01-01 10:00:00", end_at="2099-01-01 10:00:09"))

    state = final_state(call)
    assert (state["status"], state["started_at"], state["ended_at"]) == ("busy", None, None)


def test_an_answer_dated_far_from_the_call_still_says_it_was_answered(make_call):
    call = sent_call(make_call)
    ingest(push(status="NOANSWER"))

    ingest(push(status="ANSWER", start_at="1999-01-01 10:00:00", end_at="1999-01-01 10:00:30"))

    state = final_state(call)
    assert (state["status"], state["started_at"]) == ("answered", provider_time("10:00"))


def test_only_the_call_model_writes_a_call_s_status():
    """Every status move is one of the model's methods (models/life.py, models/calls.py): no
    other module updates a status column, in one statement or in bulk."""
    package = Path(calls.__file__).parent
    own = {package / "models" / "life.py", package / "models" / "calls.py"}
    writes = re.compile(r"\.update\([^)]*\bstatus=|update_rows\([^)]*OUTCOME_COLUMNS")
    found = [
        f"{path.relative_to(package)}: {match.group(0)}"
        for path in sorted(package.rglob("*.py"))
        if path not in own and "migrations" not in path.parts
        for match in writes.finditer(path.read_text())
    ]
    assert found == []


def _plan_for_any_values(sql: str, params: list) -> str:
    """How the database runs `sql` planned once for any values, as a prepared statement is."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":  # SQLite plans a statement before its values are bound
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            return str(cursor.fetchall())
        parts = sql.split("%s")
        numbered = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))
        cursor.execute(f"PREPARE for_any_values AS {numbered}")
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute("SET LOCAL enable_seqscan = off")  # whether an index can serve, at any size
        cursor.execute(f"EXPLAIN EXECUTE for_any_values({', '.join(['%s'] * len(params))})", params)
        plan = "\n".join(line for (line,) in cursor.fetchall())
        cursor.execute("DEALLOCATE for_any_values")
        return plan


@pytest.mark.parametrize("look", ["since", "keys", "back"])
def test_the_look_for_deliveries_that_came_before_their_answer_reads_their_index(make_call, look):
    """The engine looks every second for deliveries that carry an id and found no call, come
    within EARLY_WINDOW, and further back a part at a time; a late answer or a batch
    that taught calls their ids looks for those ids. Planned once for any values (prepared;
    every SQLite statement), a look must read an index of such deliveries (by time, by id),
    not every event there is."""
    looks = []
    if look == "back":  # two kept unmatched: a part of one has two ends to read between
        for n in range(2):
            CallEvent.objects.store(source="webhook", body=b'{"id": "not-ours-%d"}' % n)
        apply_waiting()

    def keep(execute, sql, params, many, context):
        if sql.startswith('SELECT "calls_callevent"'):
            looks.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        if look == "since":
            CallEvent.objects.queue_again_learned(since=pinned_now() - EARLY_WINDOW)
        elif look == "keys":
            make_call(provider_id=CALL_ID)  # a call has it: the deliveries with it are read
            CallEvent.objects.queue_again_learned(keys=[CALL_ID])
        else:  # a part's end, then the part between its two ends
            CallEvent.objects.look_back_learned(
                before=Reached(pinned_now(), 10**9), until=pinned_now() - LOOK_BACK, part=1
            )

    assert len(looks) == (2 if look == "back" else 1)
    for sql, params in looks:
        assert "event_unmatched" in _plan_for_any_values(sql, params)
