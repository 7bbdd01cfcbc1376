"""The Dispatcher (calls/tasks.py) sends a campaign at its pace, with a bucket shared by workers,
each row exactly once, through pause, resume and stop, HTTP 429 and failures, inside its
calling window, with secrets in clear only to the provider."""

import itertools
import json
import logging
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import time as clock_time
from datetime import timedelta
from functools import partial

import pytest
from django.db import connection

from calls.models import CallLog, Campaign
from calls.provider.base import SendResult
from calls.provider.configured import get_gateway
from calls.sealing import unseal
from calls.tasks import RATE_LIMITED, Dispatcher, sending_times
from tests.helpers.campaigns import make_campaign, number, running_campaign, statuses, upload, utc
from tests.helpers.dispatch import (
    START,
    FakeClock,
    FakeGateway,
    TurnClock,
    accepted,
    dispatcher,
    rate_limited,
)
from tests.helpers.portal import database_dump, logged_in

# --- pace -----------------------------------------------------------------------------------------


def assert_even_pace(seconds: list[float], pace: float) -> None:
    """Sends spread over (N-1)/pace seconds, each 1/pace after the one before, within 5 %."""
    expected_span = (len(seconds) - 1) / pace
    assert seconds == sorted(seconds)
    assert abs((seconds[-1] - seconds[0]) - expected_span) <= 0.05 * expected_span
    for before, after in itertools.pairwise(seconds):
        assert abs((after - before) - 1 / pace) <= 0.05 / pace


@pytest.mark.parametrize(("pace", "rows"), [("2", 11), ("5", 26), ("0.5", 5), ("1.5", 7)])
def test_a_campaign_is_sent_at_its_pace_evenly_spaced(bridge, sound, pace, rows):
    campaign = running_campaign(bridge, sound, rows=rows, pace=pace)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now)

    assert dispatcher(campaign, gateway, clock).run() == "empty"

    assert gateway.numbers == [number(i) for i in range(rows)]
    assert_even_pace(gateway.seconds(), float(pace))
    campaign.refresh_from_db()
    assert campaign.status == "finished" and campaign.finished_at is not None
    assert set(statuses(campaign)) == {"queued"}


def test_a_fast_campaign_sends_the_calls_of_50_ms_together_and_never_before_their_slots(
    bridge, sound
):
    """At 100 calls a second, one wake-up for five sends, at the fifth one's slot: no call goes
    before its slot, so no second holds more than the pace, and the whole takes what it took."""
    rows, pace = 250, 100
    campaign = running_campaign(bridge, sound, rows=rows, pace=str(pace))
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now)

    assert dispatcher(campaign, gateway, clock).run() == "empty"

    assert gateway.numbers == [number(i) for i in range(rows)]
    seconds = gateway.seconds()
    together = Counter(seconds)
    assert set(together.values()) == {5}
    instants = sorted(together)
    assert all(abs(after - before - 0.05) < 1e-6 for before, after in itertools.pairwise(instants))
    assert instants[0] == pytest.approx(4 / pace)  # the first slot is the clock's start
    assert all(at >= i / pace - 1e-6 for i, at in enumerate(seconds))
    micros = [round(at * 1_000_000) for at in seconds]  # a second's window, counted exactly
    assert max(sum(t <= at < t + 1_000_000 for at in micros) for t in micros) == pace
    assert seconds[-1] == pytest.approx((rows - 1) / pace, abs=1e-6)


def test_calls_sent_together_take_time_yet_the_pace_does_not_slip(bridge, sound):
    """The last of five calls sent together begins 12 ms after its slot: the next batch's
    slots go on from the bucket's, not from the late moment (else 100/s became 97/s)."""
    rows, pace = 200, 100
    campaign = running_campaign(bridge, sound, rows=rows, pace=str(pace))
    clock = FakeClock()
    each_post_takes_3_ms = {n: partial(clock.sleep, 0.003) for n in range(1, rows + 1)}
    gateway = FakeGateway(now=clock.now, after_send=each_post_takes_3_ms)

    assert dispatcher(campaign, gateway, clock).run() == "empty"

    seconds = gateway.seconds()
    assert len(seconds) == rows
    assert all(at >= i / pace - 1e-6 for i, at in enumerate(seconds))  # never early
    assert seconds[-1] <= (rows - 1) / pace + 4 * 0.003 + 1e-6


def test_a_bucket_a_little_behind_goes_on_from_where_it_was_one_far_behind_starts_again(
    bridge, sound
):
    campaign = running_campaign(bridge, sound, rows=1, pace="100")
    now, gap = START, timedelta(milliseconds=10)
    for behind, first in [(30, START - timedelta(milliseconds=30)), (80, START)]:
        campaign.next_send_at = now - timedelta(milliseconds=behind)
        campaign.save(update_fields=["next_send_at"])
        slots = campaign.take_slots(now, 2, kept_behind=timedelta(milliseconds=50))
        assert slots == [first, first + gap]
    campaign.next_send_at = now - timedelta(milliseconds=30)
    campaign.save(update_fields=["next_send_at"])
    assert campaign.take_slots(now, 1) == [now]  # by default: never behind now


def test_sending_times_gather_slots_less_than_50_ms_apart_at_the_last_one():
    def at(ms: int):
        return START + timedelta(milliseconds=ms)

    assert (
        sending_times([at(10 * i) for i in range(12)])
        == [at(40)] * 5 + [at(90)] * 5 + [at(110)] * 2
    )
    every_50 = [at(50 * i) for i in range(3)]  # 20 a second or slower: each call alone
    assert sending_times(every_50) == every_50
    assert sending_times([]) == []


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_share_the_campaigns_pace_instead_of_each_keeping_it(bridge, sound):
    pace, rows = 2.0, 12
    campaign = running_campaign(bridge, sound, rows=rows, pace=str(pace))
    clock = TurnClock(workers=2)
    gateway = FakeGateway(now=clock.now)

    def take_turns(worker: Dispatcher) -> str:
        clock.enter()
        try:
            return worker.run()
        finally:
            connection.close()
            clock.leave()

    workers = [dispatcher(Campaign.objects.get(pk=campaign.pk), gateway, clock) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        reasons = list(pool.map(take_turns, workers))

    assert "empty" in reasons and set(reasons) <= {"empty", "stopped"}
    assert sorted(gateway.numbers) == [number(i) for i in range(rows)]
    assert len({sent.worker for sent in gateway.sent}) == 2  # both really sent
    assert_even_pace(gateway.seconds(), pace)


# --- exactly once ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_every_row_exactly_once(bridge, sound):
    rows = 40
    campaign = running_campaign(bridge, sound, rows=rows, pace="500")
    gateway = FakeGateway(delay=0.002)  # a little network time, so the workers overlap
    ready = threading.Barrier(2)

    def work(_: int) -> str:
        try:
            worker = Dispatcher(Campaign.objects.get(pk=campaign.pk), gateway)
            ready.wait(timeout=10)
            return worker.run()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        reasons = list(pool.map(work, range(2)))

    assert "empty" in reasons and set(reasons) <= {"empty", "stopped"}
    assert Counter(gateway.numbers) == Counter(number(i) for i in range(rows))
    assert len({sent.worker for sent in gateway.sent}) == 2
    assert set(statuses(campaign)) == {"queued"}
    assert campaign.calls.values("provider_id").distinct().count() == rows
    campaign.refresh_from_db()
    assert campaign.status == "finished"


# --- pause, resume, stop ------------------------------------------------------------------------


def test_a_paused_campaign_sends_nothing_until_it_is_resumed(bridge, sound):
    campaign = running_campaign(bridge, sound)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now)
    assert campaign.pause()

    assert dispatcher(campaign, gateway, clock).run() == "stopped"
    assert gateway.sent == []

    assert campaign.resume()
    assert dispatcher(campaign, gateway, clock).run() == "empty"
    assert gateway.numbers == [number(0), number(1), number(2)]
    campaign.refresh_from_db()
    assert campaign.status == "finished"


def test_pausing_while_the_dispatcher_runs_stops_it_after_the_call_in_flight(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=5)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now, after_send={2: campaign.pause})

    assert dispatcher(campaign, gateway, clock).run() == "stopped"

    assert gateway.numbers == [number(0), number(1)]
    assert statuses(campaign) == ["queued", "queued", "pending", "pending", "pending"]


def test_stop_withdraws_unsent_rows_and_nothing_more_is_sent(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=4)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now, after_send={1: campaign.stop})

    assert dispatcher(campaign, gateway, clock).run() == "stopped"

    assert gateway.numbers == [number(0)]
    assert statuses(campaign) == ["queued", "withdrawn", "withdrawn", "withdrawn"]
    assert set(campaign.calls.filter(status="withdrawn").values_list("error", flat=True)) == {
        "The campaign was stopped before this call was sent."
    }
    campaign.refresh_from_db()
    assert campaign.status == "stopped" and campaign.finished_at is not None
    assert dispatcher(campaign, gateway, clock).run() == "stopped"
    assert len(gateway.sent) == 1
    assert not campaign.resume() and not campaign.start()


@pytest.mark.parametrize("pace", ["10", "100"])  # at 100/s the four go together
@pytest.mark.parametrize("action", ["stop", "pause"])
def test_rows_a_worker_holds_in_its_batch_follow_a_stop_or_pause(bridge, sound, action, pace):
    campaign = running_campaign(bridge, sound, rows=4, pace=pace)  # one batch holds all four
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now, after_send={1: getattr(campaign, action)})

    assert dispatcher(campaign, gateway, clock).run() == "stopped"

    assert gateway.numbers == [number(0)]
    waiting = "withdrawn" if action == "stop" else "pending"
    assert statuses(campaign) == ["queued", waiting, waiting, waiting]
    assert not campaign.calls.filter(status="pending").exclude(submitted_at=None).exists()


# --- what the provider answers --------------------------------------------------------------------


@pytest.mark.parametrize(("retry_after", "wait"), [(7.0, 7), (None, 10)])
def test_a_429_gives_the_row_back_and_holds_the_whole_campaign_for_retry_after(
    campaign, settings, retry_after, wait
):
    settings.OBD_RATE_LIMIT_WAIT_SECONDS = 10
    upload(campaign, "number,Name,otp\n918867135123,Asha,482913\n")
    assert campaign.start()
    clock = FakeClock()
    worker = dispatcher(
        campaign, FakeGateway(now=clock.now, answers=(rate_limited(retry_after),)), clock
    )
    assert campaign.take_slots(clock.now(), 1) == [clock.now()]
    [call] = campaign.claim_calls(1, timedelta(minutes=1))

    assert worker.send(call) == RATE_LIMITED

    call.refresh_from_db()
    assert (call.status, call.submitted_at, call.http_status, call.provider_id) == (
        "pending",
        None,
        None,
        "",
    )
    assert unseal(call.sealed_variables) == {"otp": "482913"}  # kept for the next attempt
    campaign.refresh_from_db()
    assert campaign.next_send_at >= clock.now() + timedelta(seconds=wait)


def test_after_a_429_the_next_send_waits_for_retry_after_and_each_row_is_placed_once(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=2, pace="1")
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now, answers=(rate_limited(7.0),))

    assert dispatcher(campaign, gateway, clock).run() == "empty"

    assert list(zip(gateway.numbers, gateway.seconds(), strict=True)) == [
        (number(0), 0.0),  # refused: too many requests
        (number(0), 7.0),  # the same row, once Retry-After has passed
        (number(1), 8.0),  # then the pace again
    ]
    assert statuses(campaign) == ["queued", "queued"]
    assert CallLog.objects.count() == 2


def test_a_429_among_calls_sent_together_holds_the_rest_of_them_too(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=5, pace="100")  # the five go together
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now, answers=(accepted(), rate_limited(2.0)))

    assert dispatcher(campaign, gateway, clock).run() == "empty"

    assert gateway.numbers == [number(i) for i in (0, 1, 1, 2, 3, 4)]  # the refused one again
    assert gateway.seconds()[:2] == [0.04, 0.04]  # together, at the fifth slot
    assert min(gateway.seconds()[2:]) >= 2.04  # the rest waited as the provider asked
    assert statuses(campaign) == ["queued"] * 5
    assert CallLog.objects.count() == 5


def test_an_error_row_stays_error_for_the_user_to_retry_and_an_unknown_row_is_never_resent(
    campaign, supervisor, sends
):
    upload(
        campaign,
        "number,Name,otp\n918867140000,Asha,111111\n918867140001,Ravi,222222\n"
        "918867140002,Dee,333333\n",
    )
    assert campaign.start()
    clock = FakeClock()
    answers = (
        SendResult(status="error", error="Could not reach the provider. Nothing was sent."),
        SendResult(status="unknown", http_status=503, error="The call may have been placed."),
    )
    gateway = FakeGateway(now=clock.now, answers=answers)

    assert dispatcher(campaign, gateway, clock).run() == "empty"

    assert gateway.numbers == ["918867140000", "918867140001", "918867140002"]  # each once
    assert statuses(campaign) == ["error", "unknown", "queued"]
    campaign.refresh_from_db()
    assert campaign.status == "finished"
    error_row, unknown_row = campaign.calls.order_by("id")[:2]
    client = logged_in(supervisor)  # a campaign's call: a supervisor's to retry
    retry_form = client.get(error_row.get_absolute_url()).context["retry_form"]
    assert list(retry_form.fields) == ["variables[otp]"]  # the sealed otp was wiped: asked again
    client.post(f"/calls/{error_row.pk}/retry/", {"variables[otp]": "111111"})
    client.post(f"/calls/{unknown_row.pk}/retry/", {"variables[otp]": "222222"})
    assert sends.run() == ["queued"]  # the retry, sent by the worker
    error_row.refresh_from_db()
    unknown_row.refresh_from_db()
    assert (error_row.status, unknown_row.status) == ("queued", "unknown")


def test_each_row_records_when_its_own_post_began_not_when_its_batch_was_claimed(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=4, pace="2")  # one batch of two at a time
    clock = FakeClock()

    assert dispatcher(campaign, FakeGateway(now=clock.now), clock).run() == "empty"

    sent = list(campaign.calls.order_by("id").values_list("submitted_at", flat=True))
    assert [(t - sent[0]).total_seconds() for t in sent] == [0.0, 0.5, 1.0, 1.5]


# --- the calling window ---------------------------------------------------------------------------


def kolkata_window(start: str = "09:00", end: str = "20:00") -> dict:
    return {
        "window_start": clock_time.fromisoformat(start),
        "window_end": clock_time.fromisoformat(end),
        "window_timezone": "Asia/Kolkata",
    }


def test_outside_its_window_a_campaign_sends_nothing_until_the_window_opens(bridge, sound):
    campaign = running_campaign(bridge, sound, **kolkata_window())
    clock = FakeClock(utc(15, 30))  # 21:00 in Kolkata
    gateway = FakeGateway(now=clock.now)

    assert dispatcher(campaign, gateway, clock).run() == "window"
    assert gateway.sent == []

    clock.moment = campaign.window_opens_after(clock.now())
    assert dispatcher(campaign, gateway, clock).run() == "empty"
    assert gateway.seconds(since=utc(3, 30, day=3)) == [0.0, 1.0, 2.0]


def test_no_call_is_sent_once_the_window_has_closed_while_waiting_for_its_turn(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=5, pace="1", **kolkata_window())
    clock = FakeClock(utc(14, 29) + timedelta(seconds=58))  # 19:59:58 in Kolkata
    gateway = FakeGateway(now=clock.now)

    assert dispatcher(campaign, gateway, clock).run() == "window"

    assert all(campaign.in_window(sent.at) for sent in gateway.sent), gateway.seconds(utc(14, 30))
    assert gateway.numbers == [number(0), number(1)]


# --- secrets: sealed until sent, in clear only to the provider ------------------------------------


@pytest.fixture
def provider(real_gateway):
    """The real MobtextingGateway against the local fake provider, which queues every call."""

    def queue(request) -> tuple[int, dict, bytes]:
        row = {"id": str(uuid.uuid4()), "status": "queued", "credits": 1}
        body = {"status": "OK", "message": "Calls queued successfully", "data": [row]}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    real_gateway.reply = queue
    return real_gateway


def test_a_campaign_otp_is_never_stored_in_clear_yet_reaches_the_provider_and_is_then_wiped(
    bridge, otp_flow, provider, caplog
):
    caplog.set_level(logging.DEBUG)
    campaign = make_campaign(bridge, flow=otp_flow, pace="50")
    secrets = {"918867135123": "739164", "918867135124": "582047"}
    upload(campaign, "number,Name,otp\n" + "".join(f"{n},Asha,{s}\n" for n, s in secrets.items()))
    stored_before_sending = database_dump()
    assert campaign.start()

    assert Dispatcher(campaign, get_gateway()).run() == "empty"

    sent = [request.json() for request in provider.requests]
    assert {body["to"]: body["variables[otp]"] for body in sent} == secrets
    assert all(body["variables[Name]"] == "Asha" for body in sent)
    assert set(statuses(campaign)) == {"queued"}
    assert set(campaign.calls.values_list("sealed_variables", flat=True)) == {""}
    stored_after_sending = database_dump()
    for secret in secrets.values():
        assert secret not in stored_before_sending
        assert secret not in stored_after_sending
        assert secret not in caplog.text


def test_a_row_whose_sealed_otp_cannot_be_read_fails_instead_of_sending_the_mask(
    campaign, settings
):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n")
    settings.SECRET_KEY = "another-secret-key-after-a-rotation"
    assert campaign.start()
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now)

    assert dispatcher(campaign, gateway, clock).run() == "empty"

    assert gateway.sent == []
    call = campaign.calls.get()
    assert call.status == "error"
    assert "SECRET_KEY changed" in call.error
