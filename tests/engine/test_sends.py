"""Sending a call (calls/engine/sends.py): the request that places or retries a call stores it and
queues its send, never asking the provider itself; a worker's task sends it once (duplicate or
concurrent tasks included) through the one send sequence, and a late answer keeps an outcome
that came meanwhile. A lost task is made good by the schedule's sweep; a send killed after its
POST may have left is `unknown`, never sent again."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from calls.engine.sends import send_call
from calls.models import CallLog
from calls.schedules import LOST_AFTER, queue_overdue_calls
from calls.sealing import unseal
from tests.clock import pinned_now
from tests.helpers.answers import QUEUED
from tests.helpers.portal import OTP, call_form, database_dump, place_call, text_of
from tests.helpers.webhooks import CALL_ID, deliver, push


def posts(provider) -> list[dict]:
    return [r.json() for r in provider.requests if r.method == "POST"]


def test_placing_a_call_answers_at_once_and_the_page_says_sending_until_the_worker_sends_it(
    agent_client, bridge, otp_flow, real_gateway, sends
):
    real_gateway.answer(200, QUEUED)
    data = call_form(bridge, otp_flow, **{"variables[Name]": "Asha", "variables[otp]": OTP})

    response = agent_client.post("/calls/new/", data)

    call = CallLog.objects.get()
    assert response.status_code == 302 and response["Location"] == call.get_absolute_url()
    assert real_gateway.requests == []  # the request never asked the provider
    assert call.status == "pending" and call.submitted_at is None
    assert unseal(call.sealed_variables) == {"otp": OTP}
    assert OTP not in database_dump()  # sealed, never in clear
    assert len(sends.queued()) == 1  # one send, queued once the request committed
    page = agent_client.get(call.get_absolute_url()).text
    assert "Sending…" in text_of(page) and 'hx-trigger="every 1s"' in page
    assert "sending…" in text_of(agent_client.get("/calls/").text)

    assert sends.run() == ["queued"]

    assert posts(real_gateway) == [
        {
            "bridge": "918068287602",
            "to": "918867135123",
            "flow_id": "24",
            "variables[Name]": "Asha",
            "variables[otp]": OTP,
        }
    ]
    call.refresh_from_db()
    assert call.sealed_variables == "" and call.provider_id == CALL_ID
    page = text_of(agent_client.get(call.get_absolute_url()).text)
    assert "Sending" not in page and "Outcome Queued" in page
    assert OTP not in database_dump()


def test_a_send_task_run_again_finds_the_call_sent_and_posts_nothing(
    agent_client, bridge, sound, real_gateway, sends
):
    real_gateway.answer(200, QUEUED)
    agent_client.post("/calls/new/", call_form(bridge, audio=sound))
    call = CallLog.objects.get()
    send_call.enqueue(call.pk)  # a duplicate of the task the request queued

    assert sorted(sends.run()) == ["not ours", "queued"]
    assert send_call.call(call.pk) == "not ours"
    assert len(posts(real_gateway)) == 1


def test_a_worker_whose_clock_is_a_little_behind_the_webs_still_sends_a_call_placed_now(
    bridge, sound, real_gateway
):
    real_gateway.answer(200, QUEUED)
    ahead = pinned_now() + timedelta(milliseconds=300)  # the clock of the web that placed it
    call = CallLog.objects.create(bridge=bridge, audio=sound, to="918867135123", not_before=ahead)

    assert send_call.call(call.pk) == "queued"
    assert len(posts(real_gateway)) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_the_same_call_at_once_post_it_once(bridge, sound, real_gateway):
    real_gateway.answer(200, QUEUED)
    call = CallLog.objects.create(
        bridge=bridge, audio=sound, to="918867135123", not_before=pinned_now()
    )
    start = threading.Barrier(4)

    def worker(_: int) -> str:
        try:
            start.wait(timeout=10)
            return send_call.call(call.pk)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = sorted(pool.map(worker, range(4)))

    assert done == ["not ours", "not ours", "not ours", "queued"]
    assert len(posts(real_gateway)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_late_answer_never_overwrites_an_outcome_that_arrived_meanwhile(
    agent, bridge, otp_flow, real_gateway
):
    seen = {}

    def answer_after_the_outcome(request):
        # The customer answered and hung up before the provider answered our POST.
        seen["door"] = deliver(Client(), push(status="ANSWER")).status_code
        seen["meanwhile"] = CallLog.objects.get().status
        return 200, {"Content-Type": "application/json"}, json.dumps(QUEUED).encode()

    real_gateway.reply = answer_after_the_outcome
    client = Client()
    client.force_login(agent)
    call = place_call(client, bridge, otp_flow)  # committed: its task is queued at once

    assert send_call.call(call.pk) == "answered"

    assert seen == {"door": 202, "meanwhile": "answered"}
    call.refresh_from_db()
    assert call.status == "answered" and call.duration == 23
    assert call.provider_id == CALL_ID and call.http_status == 200  # what the answer adds


def test_a_call_whose_send_task_was_lost_is_queued_again_and_sent_once(
    agent_client, bridge, sound, real_gateway, sends
):
    real_gateway.answer(200, QUEUED)
    agent_client.post("/calls/new/", call_form(bridge, audio=sound))
    (lost,) = sends.queued()
    lost.claim("a-worker-killed-before-it-began")  # RUNNING for ever: its worker died
    call = CallLog.objects.get()

    assert queue_overdue_calls(pinned_now()) == 0  # its task may still come
    later = call.not_before + LOST_AFTER
    assert queue_overdue_calls(later) == 1
    lease = timedelta(seconds=settings.OBD_CLAIM_LEASE_SECONDS)
    assert queue_overdue_calls(later + lease - timedelta(seconds=1)) == 0  # queued once a lease

    assert sends.run() == ["queued"]
    assert len(posts(real_gateway)) == 1
    assert queue_overdue_calls(later + timedelta(minutes=5)) == 0


def test_a_call_whose_worker_died_after_the_post_began_becomes_unknown_and_is_never_resent(
    agent_client, bridge, sound, real_gateway, sends
):
    agent_client.post("/calls/new/", call_form(bridge, audio=sound))
    call = CallLog.objects.get()
    assert call.begin_sending()  # the worker began the POST, then was killed

    grace = timedelta(seconds=settings.OBD_SEND_GRACE_SECONDS)
    assert CallLog.objects.recover_abandoned(pinned_now() + grace + timedelta(seconds=1)) == (0, 1)

    call.refresh_from_db()
    assert call.status == "unknown" and call.sealed_variables == ""
    assert queue_overdue_calls(pinned_now() + timedelta(hours=1)) == 0
    assert sends.run() == ["not ours"]  # the task the request queued
    assert posts(real_gateway) == []
    page = text_of(agent_client.get(call.get_absolute_url()).text)
    assert "Sending" not in page and "may or may not have been placed" in page


def test_a_call_waiting_for_its_worker_counts_for_the_redial_warning(
    agent_client, bridge, sound, sends
):
    agent_client.post("/calls/new/", call_form(bridge, audio=sound))
    waiting = CallLog.objects.get()

    warned = agent_client.post("/calls/new/", call_form(bridge, audio=sound))

    assert f"(call #{waiting.pk}, pending)" in text_of(warned.text)
    assert CallLog.objects.count() == 1
