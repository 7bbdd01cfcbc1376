"""The campaign Dispatcher's circuit breaker (calls/tasks.py `Dispatcher._watch_provider`,
Campaign.note_provider_answer): a provider that stops answering (hung, unreachable, 5xx) pauses
the campaign after OBD_PAUSE_AFTER_PROVIDER_FAILURES sends in a row, counted across dispatchers,
with the reason on its page and a notice to every supervisor; the calls already sent stay
`unknown` for the status look-up, the rest wait, and a person resumes it."""

import time
from datetime import timedelta

import pytest
from django_tasks_db.models import DBTaskResult

from calls.engine.dispatch import dispatch_campaign
from calls.models import Campaign, Notice
from calls.provider.base import SendResult
from calls.provider.configured import get_gateway
from calls.tasks import Dispatcher
from tests.helpers.campaigns import running_campaign, statuses
from tests.helpers.dispatch import FakeClock, FakeGateway, accepted, dispatcher
from tests.helpers.portal import logged_in, text_of


def timed_out() -> SendResult:
    return SendResult(status="unknown", error="No answer from the provider (read timeout).")


def unreachable() -> SendResult:
    return SendResult(status="error", error="Could not reach the provider (connection refused).")


def failing() -> SendResult:
    return SendResult(status="unknown", http_status=503, error="The provider failed with 503.")


def refused() -> SendResult:
    return SendResult(status="rejected", http_status=422, error="Invalid number.")


def test_three_sends_in_a_row_without_an_answer_pause_the_campaign_and_tell_supervisors(
    bridge, sound, supervisor, agent, admin_user
):
    campaign = running_campaign(bridge, sound, rows=6)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now, answers=(timed_out(), unreachable(), failing()))

    assert dispatcher(campaign, gateway, clock).run() == "stopped"

    assert len(gateway.sent) == 3  # the fourth row is never sent
    assert statuses(campaign) == ["unknown", "error", "unknown", "pending", "pending", "pending"]
    waiting = campaign.calls.filter(status="pending")
    assert not waiting.filter(lease_until__isnull=False).exists()  # free for a dispatcher
    campaign.refresh_from_db()
    assert campaign.status == "paused" and campaign.provider_failures == 3
    assert "the provider left 3 calls in a row without an answer" in campaign.paused_reason
    told = Notice.objects.filter(kind=Notice.Kind.CAMPAIGN_PAUSED)
    assert sorted(told.values_list("user__username", flat=True)) == ["boss", "supervisor"]
    assert told.first().link == campaign.get_absolute_url()

    page = text_of(logged_in(supervisor).get(campaign.get_absolute_url()).text)
    assert "Paused: the provider is not answering" in page
    assert "Calls already sent stay unknown until the provider" in page
    assert "Resume" in page


def test_a_person_resumes_it_and_the_count_starts_again(bridge, sound, supervisor):
    campaign = running_campaign(bridge, sound, rows=6)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now, answers=(timed_out(),) * 3)
    assert dispatcher(campaign, gateway, clock).run() == "stopped"

    response = logged_in(supervisor).post(f"/campaigns/{campaign.pk}/resume/")

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "running" and campaign.paused_reason == ""
    assert campaign.provider_failures == 0
    assert DBTaskResult.objects.filter(task_path=dispatch_campaign.module_path).exists()
    assert dispatcher(campaign, gateway, clock).run() == "empty"  # the provider is back
    assert statuses(campaign) == ["unknown"] * 3 + ["queued"] * 3


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param((timed_out(), timed_out(), accepted()) * 3, id="an answer between them"),
        pytest.param((timed_out(), unreachable(), refused()) * 3, id="a refusal is an answer"),
    ],
)
def test_failures_broken_by_an_answer_never_pause_it(bridge, sound, supervisor, answers):
    campaign = running_campaign(bridge, sound, rows=9)
    clock = FakeClock()

    assert dispatcher(campaign, FakeGateway(now=clock.now, answers=answers), clock).run() == "empty"

    campaign.refresh_from_db()
    assert campaign.status == "finished" and campaign.paused_reason == ""
    assert not Notice.objects.exists()


def test_an_answer_that_finds_an_outcome_already_there_still_starts_the_count_again(
    bridge, sound, supervisor
):
    """The third call's outcome comes while its POST waits: its answer is stored under the
    row's lock (the compare-and-set finds the row moved on), and it still counts as an
    answer."""
    campaign = running_campaign(bridge, sound, rows=5)
    clock = FakeClock()
    in_flight = campaign.calls.filter(status="pending", submitted_at__isnull=False)
    outcome = {3: lambda: in_flight.update(status="answered")}
    answers = (timed_out(), timed_out(), accepted(), timed_out(), timed_out())
    gateway = FakeGateway(now=clock.now, answers=answers, after_send=outcome)

    assert dispatcher(campaign, gateway, clock).run() == "empty"

    campaign.refresh_from_db()
    assert campaign.status == "finished" and campaign.provider_failures == 2
    assert statuses(campaign) == ["unknown", "unknown", "answered", "unknown", "unknown"]


def test_with_the_breaker_off_a_silent_provider_never_pauses_it(bridge, sound, settings):
    settings.OBD_PAUSE_AFTER_PROVIDER_FAILURES = 0
    campaign = running_campaign(bridge, sound, rows=5)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now, answers=(timed_out(),) * 5)

    assert dispatcher(campaign, gateway, clock).run() == "empty"
    assert statuses(campaign) == ["unknown"] * 5


def test_dispatchers_count_together_and_one_notice_is_posted(bridge, sound, supervisor):
    campaign = running_campaign(bridge, sound, rows=6)
    clock = FakeClock()
    gateway = FakeGateway(now=clock.now, answers=(timed_out(),) * 6)
    first, second = (dispatcher(campaign, gateway, clock) for _ in range(2))
    # They send in turn: neither alone sees three failures in a row.

    assert first.send(campaign.claim_calls(1, timedelta(minutes=1))[0]) is None
    assert second.send(campaign.claim_calls(1, timedelta(minutes=1))[0]) is None
    assert first.send(campaign.claim_calls(1, timedelta(minutes=1))[0]) is None

    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert Notice.objects.filter(kind=Notice.Kind.CAMPAIGN_PAUSED).count() == 1
    assert second.run() == "stopped" and len(gateway.sent) == 3


def test_a_provider_that_hangs_over_http_pauses_the_campaign_after_three_timeouts(
    bridge, sound, real_gateway, settings
):
    settings.MOBTEXTING_READ_TIMEOUT = 0.2

    def hang(request):
        time.sleep(1)  # longer than the read timeout: the answer never comes in time
        return 200, {}, b"{}"

    real_gateway.reply = hang
    campaign = running_campaign(bridge, sound, rows=5, pace="20")

    assert Dispatcher(campaign, get_gateway(), budget=timedelta(minutes=5)).run() == "stopped"

    assert len([r for r in real_gateway.requests if r.method == "POST"]) == 3
    assert statuses(campaign) == ["unknown"] * 3 + ["pending"] * 2
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED and campaign.paused_reason
