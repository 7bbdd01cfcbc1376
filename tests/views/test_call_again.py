"""Call the unanswered again (calls/campaign_views.py campaign_again, CallAgainForm): the outcomes
picked, the count redrawn as they are ticked, a linked draft on confirming; refused, in words,
for a campaign still running and for a flow whose sensitive values were wiped."""

import pytest

from calls.models import AuditEntry, CallLog, Campaign, DoNotCall
from tests.helpers.campaigns import number, running_campaign, upload
from tests.helpers.portal import logged_in, text_of

HTMX_COUNT = {"HX-Request": "true", "HX-Target": "again-count"}


@pytest.fixture
def finished(bridge, sound) -> Campaign:
    """Five numbers ended: answered, no answer, busy, failed, and busy but on the do-not-call
    list now."""
    campaign = running_campaign(bridge, sound, rows=5)
    outcomes = ["answered", "no_answer", "busy", "failed", "busy"]
    for call, outcome in zip(campaign.calls.order_by("id"), outcomes, strict=True):
        CallLog.objects.filter(pk=call.pk).update(status=outcome, submitted_at=call.created_at)
    DoNotCall.objects.create(number=number(4))
    assert campaign.finish_if_done()
    return campaign


@pytest.fixture
def supervisor_client(supervisor):
    return logged_in(supervisor)


def test_the_campaign_page_offers_it_once_finished(supervisor_client, finished, bridge, sound):
    page = supervisor_client.get(finished.get_absolute_url()).content.decode()
    assert f'href="/campaigns/{finished.pk}/again/"' in page
    running = running_campaign(bridge, sound, rows=1)
    assert "/again/" not in supervisor_client.get(running.get_absolute_url()).content.decode()


def test_it_waits_until_every_outcome_is_in(supervisor_client, finished):
    awaiting = finished.calls.get(status="busy", to=number(2))
    CallLog.objects.filter(pk=awaiting.pk).update(status="queued")

    assert "/again/" not in supervisor_client.get(finished.get_absolute_url()).content.decode()
    page = text_of(supervisor_client.get(f"/campaigns/{finished.pk}/again/").content.decode())
    assert "Some of its calls still await their outcome" in page


def test_it_is_not_offered_once_nobody_is_left_to_call(supervisor_client, finished):
    finished.calls.exclude(to=number(4)).update(status="answered")  # the fifth: do-not-call

    assert "/again/" not in supervisor_client.get(finished.get_absolute_url()).content.decode()
    page = text_of(supervisor_client.get(f"/campaigns/{finished.pk}/again/").content.decode())
    assert "Nobody is left to call again" in page
    response = supervisor_client.post(f"/campaigns/{finished.pk}/again/", {"outcomes": "busy"})
    assert "Nobody is left to call again" in text_of(response.content.decode())
    assert Campaign.objects.count() == 1


def test_the_count_follows_the_outcomes_ticked(supervisor_client, finished):
    url = f"/campaigns/{finished.pk}/again/"
    page = text_of(supervisor_client.get(url).content.decode())
    assert "2 numbers to call again." in page  # no answer and busy are ticked first

    def count(query: str) -> str:
        response = supervisor_client.get(f"{url}?{query}", headers=HTMX_COUNT)
        html = response.content.decode()
        assert html.lstrip().startswith('<p id="again-count"')
        return text_of(html)

    assert count("outcomes=failed") == "1 number to call again."
    assert count("outcomes=no_answer&outcomes=busy&outcomes=failed") == "3 numbers to call again."
    assert count("outcomes=canceled") == "No number ended on those outcomes."
    assert count("") == "Tick at least one outcome."
    assert count("outcomes=answered&outcomes=%00") == "Tick at least one outcome."
    assert Campaign.objects.count() == 1  # counting makes nothing


def test_confirming_makes_a_linked_draft_of_those_numbers_audited(
    supervisor_client, supervisor, finished
):
    response = supervisor_client.post(
        f"/campaigns/{finished.pk}/again/", {"outcomes": ["no_answer", "failed"]}
    )
    again = Campaign.objects.exclude(pk=finished.pk).get()
    assert response.status_code == 302 and response["Location"] == again.get_absolute_url()
    assert again.status == "draft" and again.follow_up_of == finished
    assert sorted(again.calls.values_list("to", flat=True)) == [number(1), number(3)]
    entry = AuditEntry.objects.get(campaign=again)
    assert entry.actor == supervisor and entry.detail == (
        "Calling again the numbers of “November reminders” that ended no answer, failed."
    )
    html = supervisor_client.get(again.get_absolute_url()).content.decode()
    assert "A draft to call them again: check it and start it." in text_of(html)
    link = f'<a href="/campaigns/{finished.pk}/">“November reminders”</a>'
    assert f"Calls again the unanswered of {link}." in html


def test_nothing_ticked_or_nothing_left_is_said_and_nothing_is_made(supervisor_client, finished):
    url = f"/campaigns/{finished.pk}/again/"
    assert "Tick at least one outcome." in text_of(supervisor_client.post(url).content.decode())
    none = supervisor_client.post(url, {"outcomes": "canceled"}).content.decode()
    assert "No number ended on those outcomes." in text_of(none)
    assert Campaign.objects.count() == 1


def test_a_flow_with_sensitive_values_is_refused_saying_why(supervisor_client, campaign):
    upload(campaign, "number,Name,otp\n918867135123,Asha,482913\n")
    campaign.calls.update(status="no_answer", sealed_variables="")
    Campaign.objects.filter(pk=campaign.pk).update(status="finished")
    url = f"/campaigns/{campaign.pk}/again/"

    page = text_of(supervisor_client.get(url).content.decode())
    assert "sensitive variable (otp) was wiped once sent" in page
    assert "Make the draft" not in page
    refused = supervisor_client.post(url, {"outcomes": "no_answer"}).content.decode()
    assert "sensitive variable (otp) was wiped once sent" in text_of(refused)
    assert Campaign.objects.count() == 1


def test_a_running_campaign_is_refused(supervisor_client, bridge, sound):
    campaign = running_campaign(bridge, sound, rows=1)
    response = supervisor_client.post(f"/campaigns/{campaign.pk}/again/", {"outcomes": "busy"})
    assert "once it has finished" in text_of(response.content.decode())
    assert Campaign.objects.count() == 1


def test_only_supervisors_may(agent_client, finished):
    assert agent_client.get(f"/campaigns/{finished.pk}/again/").status_code == 403
    response = agent_client.post(f"/campaigns/{finished.pk}/again/", {"outcomes": "busy"})
    assert response.status_code == 403
    assert "/again/" not in agent_client.get(finished.get_absolute_url()).content.decode()
    assert Campaign.objects.count() == 1


def test_it_is_not_offered_for_a_flow_with_sensitive_values(supervisor_client, campaign):
    upload(campaign, "number,Name,otp\n918867135123,Asha,482913\n")
    campaign.calls.update(status="no_answer", sealed_variables="")
    Campaign.objects.filter(pk=campaign.pk).update(status="finished")

    page = supervisor_client.get(campaign.get_absolute_url()).content.decode()

    assert "/again/" not in page and "Call the unanswered again" not in page


def test_confirming_twice_reuses_the_draft_rather_than_making_a_second(supervisor_client, finished):
    url = f"/campaigns/{finished.pk}/again/"
    first = supervisor_client.post(url, {"outcomes": ["no_answer", "busy"]})

    again = supervisor_client.post(url, {"outcomes": ["busy", "no_answer"]}, follow=True)

    draft = Campaign.objects.exclude(pk=finished.pk).get()
    assert first["Location"] == again.redirect_chain[-1][0] == draft.get_absolute_url()
    assert "This draft already calls those numbers again." in text_of(again.content.decode())
    assert AuditEntry.objects.filter(campaign=draft).count() == 1
    other = supervisor_client.post(url, {"outcomes": ["failed"]})  # other numbers: a new draft
    assert other.status_code == 302 and Campaign.objects.count() == 3
