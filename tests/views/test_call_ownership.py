"""Who may act on a call (calls/roles.py `may_act_on`, calls/views.py call_cancel and
call_retry): an agent on the calls they placed, a supervisor on anyone's; a call's page offers
only what the person looking may do, and a request for another's call is refused, saying why."""

from datetime import timedelta

import pytest

from calls.models import CallLog
from tests.api.conftest import issue_key
from tests.clock import pinned_now
from tests.conftest import _user
from tests.helpers.portal import OTP, logged_in, text_of


@pytest.fixture
def other_agent(django_user_model):
    return _user(django_user_model, "asha", "Agents")


def call_by(user, bridge, sound, **fields) -> CallLog:
    return CallLog.objects.create(
        bridge=bridge, to="918867135123", audio=sound, created_by=user, **fields
    )


@pytest.fixture
def scheduled_by_asha(other_agent, bridge, sound) -> CallLog:
    later = pinned_now() + timedelta(days=1)
    return call_by(other_agent, bridge, sound, not_before=later)


@pytest.fixture
def failed_for_asha(other_agent, bridge, sound) -> CallLog:
    return call_by(other_agent, bridge, sound, status="error", error="connection refused")


def test_an_agent_may_not_cancel_another_agents_scheduled_call(agent, scheduled_by_asha, sends):
    client = logged_in(agent)
    page = client.get(scheduled_by_asha.get_absolute_url()).content.decode()
    assert "Scheduled for" in page and "Cancel this call" not in page

    response = client.post(f"/calls/{scheduled_by_asha.pk}/cancel/")

    assert response.status_code == 403
    said = (
        f"Call #{scheduled_by_asha.pk} was placed by asha: only they or a supervisor may cancel it."
    )
    assert said in text_of(response.content.decode())
    scheduled_by_asha.refresh_from_db()
    assert scheduled_by_asha.status == "pending"


def test_an_agent_may_not_retry_another_agents_failed_call(agent, failed_for_asha, sends):
    client = logged_in(agent)
    page = client.get(failed_for_asha.get_absolute_url()).content.decode()
    assert 'class="retry"' not in page

    response = client.post(f"/calls/{failed_for_asha.pk}/retry/", {"variables[otp]": OTP})

    assert response.status_code == 403
    assert "only they or a supervisor may retry it" in text_of(response.content.decode())
    failed_for_asha.refresh_from_db()
    assert failed_for_asha.status == "error" and sends.queued() == []


def test_an_agent_cancels_and_retries_their_own_calls(
    other_agent, scheduled_by_asha, bridge, sound
):
    client = logged_in(other_agent)
    assert "Cancel this call" in client.get(scheduled_by_asha.get_absolute_url()).text
    failed = call_by(other_agent, bridge, sound, status="error")
    assert 'class="retry"' in client.get(failed.get_absolute_url()).text

    client.post(f"/calls/{scheduled_by_asha.pk}/cancel/")
    client.post(f"/calls/{failed.pk}/retry/")

    scheduled_by_asha.refresh_from_db()
    failed.refresh_from_db()
    assert (scheduled_by_asha.status, failed.status) == ("withdrawn", "pending")


def test_a_supervisor_acts_on_anyones_call(supervisor, scheduled_by_asha, failed_for_asha, sends):
    client = logged_in(supervisor)
    assert "Cancel this call" in client.get(scheduled_by_asha.get_absolute_url()).text
    assert 'class="retry"' in client.get(failed_for_asha.get_absolute_url()).text

    assert client.post(f"/calls/{scheduled_by_asha.pk}/cancel/").status_code == 302
    assert client.post(f"/calls/{failed_for_asha.pk}/retry/").status_code == 302

    scheduled_by_asha.refresh_from_db()
    failed_for_asha.refresh_from_db()
    assert (scheduled_by_asha.status, failed_for_asha.status) == ("withdrawn", "pending")


def test_a_call_the_system_placed_is_only_for_supervisors(agent, bridge, sound):
    failed = call_by(None, bridge, sound, status="error")

    response = logged_in(agent).post(f"/calls/{failed.pk}/retry/")

    assert response.status_code == 403
    assert "placed by the system: only a supervisor may retry it." in text_of(response.text)


def test_a_call_placed_through_an_api_key_is_only_for_supervisors_saying_which_key(
    agent, bridge, sound
):
    failed = call_by(None, bridge, sound, status="error", api_key=issue_key("CRM")[0])

    response = logged_in(agent).post(f"/calls/{failed.pk}/retry/")

    assert response.status_code == 403
    assert "placed by API key “CRM”: only a supervisor may retry it." in text_of(response.text)


def test_an_outsider_is_offered_nothing_and_refused(outsider, scheduled_by_asha):
    client = logged_in(outsider)
    assert client.post(f"/calls/{scheduled_by_asha.pk}/cancel/").status_code == 403
    scheduled_by_asha.refresh_from_db()
    assert scheduled_by_asha.status == "pending"
