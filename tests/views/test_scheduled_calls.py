"""A single call placed "at" a later time (calls/forms/calls.py `at`, calls/views.py call_new
and call_cancel, calls/schedules.py): stored scheduled with its secrets sealed, shown as
scheduled, sent once by the worker's task at its time, cancellable until then. And the attempts of one
number on the call pages and the call log."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from calls.engine.jobs import run_schedules
from calls.models import MASK, AuditEntry, CallLog, UserPreference
from calls.sealing import unseal
from tests.clock import pinned_now
from tests.helpers.answers import QUEUED
from tests.helpers.campaigns import number, running_campaign
from tests.helpers.portal import OTP, audit_shown, call_form, database_dump, text_of

KOLKATA = ZoneInfo("Asia/Kolkata")


def tomorrow_at_ten(zone: ZoneInfo) -> datetime:
    return (pinned_now().astimezone(zone) + timedelta(days=1)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )


def place_at(client, bridge, flow, at: datetime | str):
    typed = at if isinstance(at, str) else at.strftime("%Y-%m-%dT%H:%M")
    data = call_form(bridge, flow, at=typed, **{"variables[Name]": "Asha", "variables[otp]": OTP})
    return client.post("/calls/new/", data)


@pytest.fixture
def scheduled(agent_client, bridge, otp_flow, sends) -> CallLog:
    response = place_at(agent_client, bridge, otp_flow, tomorrow_at_ten(KOLKATA))
    assert response.status_code == 302, response.content.decode()[:2000]
    told = text_of(agent_client.get(response["Location"]).content.decode())
    assert f"Scheduled for {when(tomorrow_at_ten(KOLKATA))}: it is sent then." in told
    return CallLog.objects.get()


def when(at: datetime) -> str:
    return f"{at:%-d %b %Y, %H:%M:%S} IST"


def test_a_call_placed_for_10_tomorrow_is_stored_scheduled_with_its_otp_sealed_not_sent(
    agent_client, scheduled
):
    assert scheduled.not_before == tomorrow_at_ten(KOLKATA)
    assert scheduled.status == "pending" and scheduled.submitted_at is None
    assert scheduled.is_scheduled
    assert scheduled.variables == {"Name": "Asha", "otp": MASK}
    assert unseal(scheduled.sealed_variables) == {"otp": OTP}
    assert OTP not in database_dump()  # sealed, never in clear

    page = text_of(agent_client.get(scheduled.get_absolute_url()).content.decode())
    at = when(tomorrow_at_ten(KOLKATA))
    assert "Outcome Scheduled Attempt" not in page  # a single call: one attempt
    assert f"Outcome Scheduled Scheduled for {at}: unless canceled, it is sent then." in page
    assert "Cancel this call" in page
    assert f"placed the call — for {at}" in page
    log = text_of(agent_client.get("/calls/").content.decode())
    assert f"scheduled for {tomorrow_at_ten(KOLKATA):%-d %b}, 10:00:00 IST" in log
    assert "Scheduled" in log


def test_the_time_is_read_in_the_zone_of_the_person_placing_the_call(
    agent, agent_client, bridge, otp_flow
):
    new_york = ZoneInfo("America/New_York")
    UserPreference.objects.create(user=agent, time_zone="America/New_York")
    place_at(agent_client, bridge, otp_flow, tomorrow_at_ten(new_york))
    assert CallLog.objects.get().not_before == tomorrow_at_ten(new_york)


@pytest.mark.parametrize(
    ("at", "error"),
    [
        ("2020-01-01T10:00", "That time has passed: leave it empty to call now."),
        ("2999-01-01T10:00", "A call can be placed at most 30 days ahead."),
        ("tomorrow-ish", "Enter a valid date/time."),
    ],
)
def test_a_time_passed_too_far_or_unreadable_is_refused_and_nothing_is_stored(
    agent_client, bridge, otp_flow, at, error
):
    response = place_at(agent_client, bridge, otp_flow, at)
    assert response.status_code == 200
    assert error in text_of(response.content.decode())
    assert not CallLog.objects.exists()


def test_its_send_is_queued_for_its_time_and_sends_it_once_then_with_the_otp_in_clear(
    scheduled, agent_client, sends, real_gateway
):
    real_gateway.answer(200, QUEUED)
    (queued,) = sends.queued()
    assert queued.task.run_after == tomorrow_at_ten(KOLKATA)
    assert sends.run() == [] and real_gateway.requests == []  # not before its time

    with time_machine.travel(tomorrow_at_ten(KOLKATA) + timedelta(seconds=1)):
        assert sends.run() == ["queued"]
        run_schedules()  # the sweep finds nothing left to queue
        assert sends.run() == []

    assert [r.json()["variables[otp]"] for r in real_gateway.requests] == [OTP]
    scheduled.refresh_from_db()
    assert scheduled.status == "queued" and scheduled.sealed_variables == ""
    page = text_of(agent_client.get(scheduled.get_absolute_url()).content.decode())
    assert "Cancel this call" not in page and "Scheduled for" not in page
    assert agent_client.post(f"/calls/{scheduled.pk}/cancel/").status_code == 302
    scheduled.refresh_from_db()
    assert scheduled.status == "queued"  # sent: too late to cancel


def test_canceling_it_withdraws_it_once_audited_and_it_is_never_sent(
    scheduled, agent_client, sends, real_gateway
):
    response = agent_client.post(f"/calls/{scheduled.pk}/cancel/", follow=True)
    page = text_of(response.content.decode())
    assert "Canceled: this call will not be sent." in page
    assert audit_shown(response.content.decode())[0] == (
        "agent canceled the call before it was sent"
    )
    scheduled.refresh_from_db()
    assert scheduled.status == "withdrawn" and scheduled.sealed_variables == ""

    again = text_of(
        agent_client.post(f"/calls/{scheduled.pk}/cancel/", follow=True).content.decode()
    )
    assert "Only a call placed for later and not sent yet can be canceled." in again
    assert AuditEntry.objects.filter(action="canceled_call").count() == 1

    with time_machine.travel(tomorrow_at_ten(KOLKATA) + timedelta(minutes=1)):
        run_schedules()
        assert sends.run() == ["not ours"]  # the task queued when it was placed: withdrawn
    assert real_gateway.requests == []


def test_cancel_is_a_post_for_people_who_place_calls(scheduled, agent_client, client, outsider):
    assert agent_client.get(f"/calls/{scheduled.pk}/cancel/").status_code == 405
    client.force_login(outsider)
    assert client.post(f"/calls/{scheduled.pk}/cancel/").status_code == 403
    assert agent_client.post("/calls/999999/cancel/").status_code == 404
    scheduled.refresh_from_db()
    assert scheduled.status == "pending"


def test_a_call_placed_now_is_sent_at_once_and_offers_no_cancel(
    agent_client, bridge, otp_flow, sends
):
    response = place_at(agent_client, bridge, otp_flow, "")
    assert response.status_code == 302
    call = CallLog.objects.get()
    assert call.not_before == call.created_at and not call.is_scheduled
    assert "Cancel this call" not in agent_client.get(call.get_absolute_url()).content.decode()
    (queued,) = sends.queued()
    assert queued.task.run_after is None  # at once
    assert sends.run() == ["queued"]
    call.refresh_from_db()
    assert call.submitted_at is not None and call.sealed_variables == ""


def test_each_attempt_says_which_it_is_and_links_the_others(agent_client, bridge, sound):
    campaign = running_campaign(
        bridge, sound, rows=1, max_attempts=3, retry_on=["no_answer"], retry_minutes=10
    )
    first = campaign.calls.get()
    first.status = "no_answer"
    first.save()
    retry = CallLog.objects.create(
        bridge=bridge,
        audio=sound,
        to=number(0),
        campaign=campaign,
        retry_of=first,
        attempt_number=2,
        status="busy",
        submitted_at=pinned_now(),
    )

    for shown, other in ((retry, first), (first, retry)):
        html = agent_client.get(shown.get_absolute_url()).content.decode()
        page = text_of(html)
        assert f"Attempt {shown.attempt_number} of 3 at this number" in page
        assert f'<a href="/calls/{other.pk}/">#{other.pk}</a>' in html
        assert f'<a aria-current="page" href="/calls/{shown.pk}/">#{shown.pk}</a>' in html
        assert "(attempt 1, no answer) · #" in page and "(attempt 2, busy)" in page
    log = text_of(agent_client.get(f"/calls/?campaign={campaign.pk}").content.decode())
    assert "Busy attempt 2 of 3" in log and "No answer attempt 1 of 3" in log


def test_a_single_call_says_nothing_of_attempts(agent_client, bridge, sound):
    call = CallLog.objects.create(bridge=bridge, audio=sound, to=number(0), status="busy")
    assert "Attempt 1 of" not in agent_client.get(call.get_absolute_url()).content.decode()
    assert "attempt 1 of" not in agent_client.get("/calls/").content.decode()
