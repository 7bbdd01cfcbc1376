"""Retry policies on a fake clock (calls/models/retries.py, the Dispatcher): each retry is a row
of its own linked to the first attempt, made once, after the interval, only for the outcomes
chosen and up to the attempts allowed; never after an answer, nor to a number on the
do-not-call list; sent through the same claims and pace; secrets move with it, then go."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection

from calls.models import CallLog, Campaign, DoNotCall
from calls.models.retries import (
    ANSWERED_BEFORE,
    ON_DO_NOT_CALL,
    CannotCallAgain,
    call_again,
    numbers,
    schedule_retries,
    unreached,
)
from calls.sealing import unseal
from tests.api.conftest import issue_key
from tests.helpers.campaigns import number, running_campaign, upload
from tests.helpers.dispatch import FakeClock, FakeGateway, dispatcher
from tests.test_tasks import assert_even_pace

POLICY = {"max_attempts": 3, "retry_on": ["no_answer", "busy"], "retry_minutes": 10}


def end_with(campaign: Campaign, status: str, clock: FakeClock) -> None:
    """The outcome of every call sent and not settled yet (as a webhook would set it)."""
    campaign.calls.filter(status="queued").update(status=status, outcome_at=clock.now())


def attempts(campaign: Campaign, to: str) -> list[tuple[int, str]]:
    calls = campaign.calls.filter(to=to).order_by("attempt_number")
    return list(calls.values_list("attempt_number", "status"))


def test_an_unanswered_number_is_tried_again_after_the_interval_up_to_the_attempts_allowed(
    bridge, sound
):
    campaign = running_campaign(bridge, sound, rows=1, **POLICY)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now)
    worker = dispatcher(campaign, gateway, clock)

    assert worker.run() == "later"  # sent; its outcome may bring a retry
    end_with(campaign, "no_answer", clock)
    first_outcome = clock.now()
    assert worker.run() == "later"
    assert worker.resume_at == first_outcome + timedelta(minutes=10)
    assert len(gateway.sent) == 1  # not before the interval

    clock.moment = worker.resume_at
    assert worker.run() == "later"
    end_with(campaign, "busy", clock)
    clock.moment += timedelta(minutes=10)
    assert worker.run() == "empty"  # the last attempt allowed is sent: nothing may follow
    end_with(campaign, "no_answer", clock)
    clock.moment += timedelta(hours=1)
    assert schedule_retries(campaign, clock.now()) == 0

    assert gateway.numbers == [number(0)] * 3  # never more than the policy's 3 attempts
    assert attempts(campaign, number(0)) == [(1, "no_answer"), (2, "busy"), (3, "no_answer")]
    first = campaign.calls.get(attempt_number=1)
    assert set(campaign.calls.exclude(pk=first.pk).values_list("retry_of", flat=True)) == {first.pk}
    seconds = gateway.seconds(since=first_outcome)
    assert seconds[1] >= 600 and seconds[2] - seconds[1] >= 600
    campaign.refresh_from_db()
    assert campaign.status == "finished"
    assert numbers(campaign) == {
        "total": 1,
        "reached": 0,
        "pending_retry": 0,
        "not_reached": 1,
        "retries": 2,
    }


@pytest.mark.parametrize("outcome", ["answered", "failed", "canceled", "rejected"])
def test_only_the_outcomes_chosen_are_retried_and_an_answer_never_is(bridge, sound, outcome):
    campaign = running_campaign(bridge, sound, rows=1, **POLICY)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now)
    dispatcher(campaign, gateway, clock).run()
    end_with(campaign, outcome, clock)
    clock.moment += timedelta(hours=1)

    assert dispatcher(campaign, gateway, clock).run() == "empty"

    assert len(gateway.sent) == 1 and campaign.calls.count() == 1


def test_no_retry_by_default(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=1)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now)
    assert dispatcher(campaign, gateway, clock).run() == "empty"
    end_with(campaign, "no_answer", clock)
    assert schedule_retries(campaign, clock.now()) == 0
    assert campaign.calls.count() == 1


def test_a_number_that_answered_an_earlier_attempt_is_not_called_again(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=1, **POLICY)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now)
    worker = dispatcher(campaign, gateway, clock)
    worker.run()
    end_with(campaign, "no_answer", clock)
    worker.run()  # the retry is made, due in 10 minutes
    # A late webhook: the first attempt was answered after all.
    campaign.calls.filter(attempt_number=1).update(status="answered")
    clock.moment += timedelta(minutes=11)

    assert worker.run() == "empty"

    assert len(gateway.sent) == 1
    retry = campaign.calls.get(attempt_number=2)
    assert retry.status == "withdrawn" and retry.error == ANSWERED_BEFORE
    assert numbers(campaign)["reached"] == 1


@pytest.mark.parametrize("listed", ["before the retry is made", "while it waits"])
def test_a_number_put_on_the_do_not_call_list_meanwhile_is_not_called_again(bridge, sound, listed):
    campaign = running_campaign(bridge, sound, rows=1, **POLICY)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now)
    worker = dispatcher(campaign, gateway, clock)
    worker.run()
    end_with(campaign, "no_answer", clock)
    if listed == "while it waits":
        worker.run()
        assert campaign.calls.get(attempt_number=2).status == "pending"
    DoNotCall.objects.create(number=number(0), reason="opted out")
    clock.moment += timedelta(minutes=11)

    assert worker.run() == "empty"

    assert len(gateway.sent) == 1
    retry = campaign.calls.get(attempt_number=2)
    assert retry.status == "withdrawn" and retry.error == ON_DO_NOT_CALL
    assert not campaign.calls.filter(attempt_number=3).exists()


def test_retries_due_keep_the_campaigns_pace(bridge, sound):
    pace, rows = 2.0, 6
    campaign = running_campaign(bridge, sound, rows=rows, pace=str(pace), **POLICY)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now)
    # Half the numbers were tried an hour ago and not answered: their retries are due now.
    first = list(campaign.calls.order_by("id")[: rows // 2])
    CallLog.objects.filter(pk__in=[c.pk for c in first]).update(
        status="no_answer", outcome_at=clock.now() - timedelta(hours=1)
    )

    dispatcher(campaign, gateway, clock).run()

    assert sorted(gateway.numbers) == sorted(number(i) for i in range(rows))
    assert campaign.calls.filter(attempt_number=2).count() == rows // 2
    assert_even_pace(gateway.seconds(), pace)


@pytest.mark.django_db(transaction=True)
def test_workers_making_retries_at_once_make_each_once(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=30, **POLICY)
    campaign.calls.update(status="no_answer", outcome_at=FakeClock().now())
    ready = threading.Barrier(3)

    def work(_: int) -> int:
        try:
            ready.wait(timeout=10)
            return schedule_retries(Campaign.objects.get(pk=campaign.pk), FakeClock().now())
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=3) as pool:
        made = sum(pool.map(work, range(3)))

    assert made == 30
    assert campaign.calls.filter(attempt_number=2).count() == 30
    assert campaign.calls.filter(attempt_number=3).count() == 0


def test_a_retry_plays_the_secret_uploaded_which_is_wiped_when_its_attempts_are_over(
    campaign,
):
    Campaign.objects.filter(pk=campaign.pk).update(**POLICY)
    campaign.refresh_from_db()
    upload(campaign, "number,Name,otp\n918867135123,Asha,482913\n")
    assert campaign.start()
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now)
    worker = dispatcher(campaign, gateway, clock)
    worker.run()
    assert unseal(campaign.calls.get().sealed_variables) == {"otp": "482913"}  # a retry may follow
    end_with(campaign, "no_answer", clock)
    worker.run()
    first, retry = campaign.calls.order_by("attempt_number")
    assert first.sealed_variables == "" and unseal(retry.sealed_variables) == {"otp": "482913"}

    clock.moment += timedelta(minutes=10)
    worker.run()
    end_with(campaign, "answered", clock)
    assert worker.run() == "empty"

    assert [sent.payload["variables[otp]"] for sent in gateway.sent] == ["482913", "482913"]
    assert set(campaign.calls.values_list("sealed_variables", flat=True)) == {""}
    assert [v["otp"] for v in campaign.calls.values_list("variables", flat=True)] == ["******"] * 2


def test_call_the_unanswered_again_makes_a_linked_draft_of_the_numbers_chosen(
    bridge, sound, supervisor
):
    campaign = running_campaign(bridge, sound, rows=4)
    outcomes = ["answered", "no_answer", "busy", "failed"]
    for call, outcome in zip(campaign.calls.order_by("id"), outcomes, strict=True):
        CallLog.objects.filter(pk=call.pk).update(status=outcome, submitted_at=call.created_at)
    DoNotCall.objects.create(number=number(3))
    with pytest.raises(CannotCallAgain, match="once it has finished"):
        call_again(campaign, ["no_answer", "busy"], supervisor)  # still running
    assert campaign.finish_if_done()

    assert unreached(campaign, ["no_answer", "busy", "failed"]).count() == 2  # not the listed one
    again = call_again(campaign, ["no_answer", "busy"], supervisor)

    assert again.follow_up_of == campaign and again.status == "draft"
    assert sorted(again.calls.values_list("to", flat=True)) == [number(1), number(2)]
    assert again.audio == campaign.audio and again.pace == campaign.pace


def test_call_the_unanswered_again_refuses_a_flow_whose_secrets_were_wiped(campaign, supervisor):
    upload(campaign, "number,Name,otp\n918867135123,Asha,482913\n")
    campaign.calls.update(status="no_answer", sealed_variables="")
    Campaign.objects.filter(pk=campaign.pk).update(status="finished")
    campaign.refresh_from_db()
    with pytest.raises(CannotCallAgain, match="otp"):
        call_again(campaign, ["no_answer"], supervisor)
    assert Campaign.objects.count() == 1


def test_a_keys_campaign_retries_under_its_key_and_a_person_calling_again_owns_the_follow_up(
    bridge, sound, supervisor
):
    campaign = running_campaign(bridge, sound, rows=1, **POLICY)
    key = issue_key("CRM")[0]
    Campaign.objects.filter(pk=campaign.pk).update(api_key=key)
    campaign.calls.update(api_key=key)
    campaign.refresh_from_db()
    clock = FakeClock()
    worker = dispatcher(campaign, FakeGateway(now=clock.now), clock)
    worker.run()
    end_with(campaign, "no_answer", clock)
    clock.moment += timedelta(minutes=10)
    worker.run()
    Campaign.objects.filter(pk=campaign.pk).update(status="finished")
    campaign.calls.update(status="no_answer")
    campaign.refresh_from_db()

    assert list(campaign.calls.order_by("id").values_list("attempt_number", "api_key")) == [
        (1, key.pk),
        (2, key.pk),
    ]
    again = call_again(campaign, ["no_answer"], supervisor)
    assert again.created_by == supervisor and again.api_key is None
    assert set(again.calls.values_list("api_key", flat=True)) == {None}
