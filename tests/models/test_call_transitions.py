"""The call's state machine (calls/models/calls.py): every move a compare-and-set on the table,
so a late or duplicate event never undoes a later one, whatever the order or concurrency."""

import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from calls.models import CallEvent, CallLog
from calls.models.calls import TRANSITIONS, Mover, allowed_from
from calls.provider.base import SendResult
from calls.sealing import masked_echo
from calls.vocabulary import OUTCOMES, SETTLED, CallStatus
from tests.clock import pinned_now
from tests.helpers.webhooks import CALL_ID, final_state, push

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
