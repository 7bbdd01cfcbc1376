"""Keypress look-ups: the real gateway against the local fake provider (faults: timeout, 5xx,
429, garbage, another call's row, a duplicate fetch), the sandbox, the pace, the stop key and a
campaign's results."""

import threading
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection

from calls.keypresses import (
    BATCH,
    campaign_results,
    describe,
    fetch_keypresses,
    look_up,
)
from calls.models import CallLog, DoNotCall
from calls.provider.base import RateLimited
from calls.provider.configured import get_gateway
from calls.provider.mobtexting import MobtextingGateway
from calls.provider.sandbox import SandboxGateway
from tests.clock import pinned_now
from tests.helpers.campaigns import make_campaign
from tests.helpers.engine import job
from tests.helpers.keypresses import STATUS_ID, answered, json_reply, status_answer
from tests.helpers.provider_shapes import STATUS_CURRENT, STATUS_LEGACY


@pytest.fixture
def choices_flow(otp_flow):
    otp_flow.choices = {"1": "confirm", "2": "reschedule", "9": "stop calling me"}
    otp_flow.stop_key = "9"
    otp_flow.save()
    return otp_flow


@pytest.fixture
def status_api(real_gateway):
    """The fake provider's status API: the asked call's row with `dtmf`, or `body` when set."""

    class StatusApi:
        dtmf: object = "1"
        body: bytes | None = None
        status = 200
        delay = 0.0

    def reply(recorded):
        if StatusApi.delay:
            time.sleep(StatusApi.delay)
        [call_id] = parse_qs(urlsplit(recorded.path).query)["id"]
        body = StatusApi.body or status_answer(call_id=call_id, dtmf=StatusApi.dtmf)
        return json_reply(StatusApi.status, body)

    real_gateway.route("outgoing/callstatus", reply)
    return StatusApi


def asked(provider) -> list[str]:
    return [r.path for r in provider.requests if "callstatus" in r.path]


def no_sleep(seconds: float) -> None:
    pass


def test_an_answered_flow_call_gets_its_keys_once(bridge, choices_flow, status_api, real_gateway):
    call = answered(bridge, choices_flow)

    run = fetch_keypresses(get_gateway(), sleep=no_sleep)
    again = fetch_keypresses(get_gateway(), sleep=no_sleep)

    call.refresh_from_db()
    assert (call.keypresses, call.keypress_tries) == ("1", 1)
    assert call.keypresses_at is not None
    assert (run.stored, again.looked_up) == (1, 0)
    assert asked(real_gateway) == [f"/api/v2/outgoing/callstatus?id={STATUS_ID}"]
    assert real_gateway.requests[0].headers["Authorization"] == "Bearer tok-123"


def test_no_key_pressed_is_known_and_empty(bridge, choices_flow, status_api):
    status_api.dtmf = None
    call = answered(bridge, choices_flow)

    fetch_keypresses(get_gateway(), sleep=no_sleep)

    call.refresh_from_db()
    assert call.keypresses == "" and call.keypresses_at is not None
    assert describe(call) == "None pressed"


@pytest.mark.parametrize("shape", [STATUS_CURRENT, STATUS_LEGACY], ids=["current", "legacy"])
@pytest.mark.parametrize("pressed", ["documented", "12"])
def test_both_documented_shapes_of_the_status_answer_give_the_keys(
    bridge, choices_flow, real_gateway, shape, pressed
):
    [row] = shape["data"]
    if pressed != "documented":  # the examples pressed nothing ("" now, null before)
        shape = {**shape, "data": [{**row, "dtmf": pressed}]}
    real_gateway.route("outgoing/callstatus", lambda r: json_reply(200, shape))
    call = answered(bridge, choices_flow, provider_id=row["id"])

    fetch_keypresses(get_gateway(), sleep=no_sleep)

    call.refresh_from_db()
    assert call.keypresses_at is not None
    assert call.keypresses == ("" if pressed == "documented" else pressed)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"status": "busy"}, "not answered"),
        ({"flow": None}, "plays an audio"),
        ({"minutes_ago": 0.2}, "outcome too fresh"),
        ({"minutes_ago": 8 * 24 * 60}, "too old"),
        ({"provider_id": ""}, "no provider id"),
    ],
)
def test_calls_that_are_not_looked_up(bridge, choices_flow, sound, status_api, fields, why):
    fields = dict(fields)
    flow = fields.pop("flow", choices_flow)
    minutes = fields.pop("minutes_ago", 5)
    answered(bridge, flow, minutes_ago=minutes, audio=None if flow else sound, **fields)

    assert fetch_keypresses(get_gateway(), sleep=no_sleep).looked_up == 0, why


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b"<html>oops</html>"),
        (200, b"not json at all"),
        (200, b'{"status": 200, "data": []}'),
        (200, b'{"status": 200, "data": [["a list"]]}'),
        (200, status_answer(dtmf="1; DROP TABLE")),
        (200, status_answer(dtmf="1" * 33)),
        (200, status_answer(dtmf="1", status="RINGING")),
        (200, status_answer(call_id="047d8cfc-77d1-4f6c-bfb5-e81f1a1343a7", dtmf="9")),
    ],
    ids=[
        "5xx",
        "not-json",
        "no-rows",
        "not-a-row",
        "garbage-dtmf",
        "too-long",
        "not-final",
        "another-call",
    ],
)
def test_a_failed_try_is_tried_again_later_and_at_most_three_times(
    bridge, choices_flow, status_api, real_gateway, status, body
):
    status_api.status, status_api.body = status, body
    call = answered(bridge, choices_flow)

    for _ in range(5):
        fetch_keypresses(get_gateway(), sleep=no_sleep)
        CallLog.objects.filter(pk=call.pk).update(keypress_retry_at=None)  # backoff over

    call.refresh_from_db()
    assert call.keypresses_at is None and call.keypresses == ""
    assert call.keypress_tries == 3
    assert len(asked(real_gateway)) == 3
    assert describe(call) == "Could not be looked up at the provider"
    assert not DoNotCall.objects.exists()


def test_a_failed_try_waits_its_backoff(bridge, choices_flow, status_api, real_gateway):
    status_api.status = 503
    call = answered(bridge, choices_flow)

    fetch_keypresses(get_gateway(), sleep=no_sleep)
    fetch_keypresses(get_gateway(), sleep=no_sleep)

    call.refresh_from_db()
    assert call.keypress_tries == 1 and len(asked(real_gateway)) == 1
    assert call.keypress_retry_at > pinned_now() + timedelta(seconds=50)


def test_a_timeout_is_a_try_and_the_next_try_stores_the_keys(
    bridge, choices_flow, status_api, settings
):
    settings.MOBTEXTING_READ_TIMEOUT = 0.3
    status_api.delay = 1.0
    call = answered(bridge, choices_flow)

    run = fetch_keypresses(get_gateway(), sleep=no_sleep)
    assert (run.failed, run.problems) == (1, [f"{call}: status look-up failed (read timeout)"])

    status_api.delay = 0
    CallLog.objects.filter(pk=call.pk).update(keypress_retry_at=None)
    fetch_keypresses(get_gateway(), sleep=no_sleep)
    call.refresh_from_db()
    assert (call.keypresses, call.keypress_tries) == ("1", 2)


def test_a_rate_limit_stops_the_run_and_is_not_a_try(
    bridge, choices_flow, status_api, real_gateway
):
    status_api.status, status_api.body = 429, b'{"message": "Too Many Requests"}'
    first = answered(bridge, choices_flow)
    answered(bridge, choices_flow, provider_id="047d8cfc-77d1-4f6c-bfb5-e81f1a1343a7")

    run = fetch_keypresses(get_gateway(), sleep=no_sleep)

    first.refresh_from_db()
    assert run.wait == 10.0 and run.looked_up == 0
    assert len(asked(real_gateway)) == 1  # the second call was not asked about
    assert first.keypress_tries == 0
    assert first.keypress_retry_at > pinned_now()


def test_a_run_stops_after_two_failures_in_a_row(bridge, choices_flow, status_api, real_gateway):
    status_api.status = 502
    for n in range(5):
        answered(bridge, choices_flow, provider_id=f"id-{n}")

    run = fetch_keypresses(get_gateway(), sleep=no_sleep)

    assert (run.looked_up, run.failed) == (2, 2)
    assert len(asked(real_gateway)) == 2


def test_a_run_is_a_bounded_batch_at_the_pace(bridge, choices_flow, status_api, settings):
    settings.OBD_KEYPRESS_LOOKUPS_PER_MINUTE = 120
    for n in range(BATCH + 5):
        answered(bridge, choices_flow, provider_id=f"id-{n}")
    status_api.dtmf = "2"
    slept: list[float] = []

    run = fetch_keypresses(get_gateway(), sleep=slept.append)

    assert run.stored == BATCH and run.more
    assert slept == [0.5] * (BATCH - 1)  # 120 a minute: half a second apart
    assert CallLog.objects.filter(keypresses="2").count() == BATCH


def test_a_duplicate_fetch_asks_once(bridge, choices_flow, status_api, real_gateway):
    """Two workers holding the same call: the try is claimed by compare-and-set first."""
    call = answered(bridge, choices_flow)
    stale = CallLog.objects.get(pk=call.pk)

    assert look_up(call, get_gateway(), pinned_now()) is True
    assert look_up(stale, get_gateway(), pinned_now()) is False
    assert len(asked(real_gateway)) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_look_ups_of_one_call_ask_once_and_list_the_number_once(
    bridge, choices_flow, status_api, real_gateway
):
    status_api.dtmf = "9"
    status_api.delay = 0.2
    call = answered(bridge, choices_flow)
    copies = [CallLog.objects.select_related("flow").get(pk=call.pk) for _ in range(4)]
    gate = threading.Barrier(len(copies))
    results: list[bool | None] = []

    def worker(copy: CallLog) -> None:
        gate.wait()
        try:
            results.append(look_up(copy, get_gateway(), pinned_now()))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(copy,)) for copy in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results, key=str) == [False, False, False, True]
    assert len(asked(real_gateway)) == 1
    assert DoNotCall.objects.filter(number=call.to).count() == 1


def test_the_stop_key_lists_the_number_once_saying_why(bridge, choices_flow, status_api):
    status_api.dtmf = "19"
    first = answered(bridge, choices_flow)
    second = answered(bridge, choices_flow, provider_id="047d8cfc-77d1-4f6c-bfb5-e81f1a1343a7")

    fetch_keypresses(get_gateway(), sleep=no_sleep)

    listed = DoNotCall.objects.get(number="918867135123")
    assert listed.reason == f"pressed 9 (stop calling me) on call #{first.pk}"
    assert listed.source == DoNotCall.Source.KEYPRESS
    second.refresh_from_db()
    assert second.keypresses == "19"  # the second call's keys are stored; the entry stays one
    assert describe(second) == "19 (first: 1 (confirm))"


def test_a_flow_without_a_stop_key_lists_nobody(bridge, otp_flow, status_api):
    status_api.dtmf = "9"
    answered(bridge, otp_flow)

    fetch_keypresses(get_gateway(), sleep=no_sleep)

    assert not DoNotCall.objects.exists()


def test_the_sandbox_answers_the_last_digit_of_the_number(bridge, choices_flow):
    call = answered(bridge, choices_flow, to="919876540019")

    run = fetch_keypresses(SandboxGateway(), sleep=no_sleep)

    call.refresh_from_db()
    assert run.stored == 1 and call.keypresses == "9"
    assert DoNotCall.objects.filter(number="919876540019").exists()


def test_the_sandbox_status_of_a_call_it_does_not_know_has_no_rows(db):
    assert (
        SandboxGateway().call_status(id="nope") == b'{"status": 200, "message": "OK", "data": []}'
    )


def test_the_real_gateway_gives_a_429_its_wait(real_gateway):
    real_gateway.route("outgoing/callstatus", lambda r: (429, {"Retry-After": "7"}, b"{}"))
    with pytest.raises(RateLimited) as caught:
        MobtextingGateway(real_gateway.url, "tok").call_status(id="x")
    assert caught.value.retry_after == 7.0


# --- the periodic job -----------------------------------------------------------------------------


def test_the_periodic_job_comes_back_after_its_interval(bridge, choices_flow, status_api, settings):
    settings.OBD_KEYPRESS_EVERY_MINUTES = 2
    call = answered(bridge, choices_flow)

    ran = job("keypresses").run()

    assert (ran.summary, ran.again_in) == ({"looked_up": 1, "stored": 1, "failed": 0}, None)
    assert job("keypresses").every() == timedelta(minutes=2)
    call.refresh_from_db()
    assert call.keypresses == "1"


def test_the_periodic_job_comes_back_at_the_pace_while_more_wait(
    bridge, choices_flow, status_api, settings
):
    settings.OBD_KEYPRESS_LOOKUPS_PER_MINUTE = 600
    for _ in range(BATCH + 1):
        answered(bridge, choices_flow)

    ran = job("keypresses").run()

    assert ran.again_in == timedelta(seconds=0.1)


def test_the_periodic_job_waits_as_a_429_says(bridge, choices_flow, real_gateway):
    real_gateway.route("outgoing/callstatus", lambda r: (429, {"Retry-After": "40"}, b"{}"))
    answered(bridge, choices_flow)

    assert job("keypresses").run().again_in == timedelta(seconds=40)


# --- results --------------------------------------------------------------------------------------


def test_a_campaigns_results_count_the_first_key_with_shares(bridge, choices_flow, sound):
    campaign = make_campaign(bridge, flow=choices_flow)
    now = pinned_now()
    for keys in ("1", "1", "12", "2", "5", ""):
        answered(bridge, choices_flow, campaign=campaign, keypresses=keys, keypresses_at=now)
    answered(bridge, choices_flow, campaign=campaign)  # still being looked up
    answered(bridge, choices_flow, campaign=campaign, keypress_tries=3)  # given up
    answered(bridge, choices_flow, status="busy", campaign=campaign)
    answered(bridge, choices_flow, keypresses="9", keypresses_at=now)  # another campaign's

    results = campaign_results(campaign)

    assert (results.answered, results.known, results.waiting, results.given_up) == (8, 6, 1, 1)
    assert [(c.key, c.name, c.words, c.calls, c.share, c.stops) for c in results.choices] == [
        ("1", "confirm", "1 (confirm)", 3, 50.0, False),
        ("2", "reschedule", "2 (reschedule)", 1, 16.7, False),
        ("9", "stop calling me", "9 (stop calling me)", 0, 0.0, True),
        ("5", "", "5", 1, 16.7, False),
        ("", "No key pressed", "No key pressed", 1, 16.7, False),
    ]
    assert results.choices[0].bar == 200


def test_an_audio_campaign_has_no_keypress_results(bridge, sound):
    assert campaign_results(make_campaign(bridge, audio=sound)) is None
