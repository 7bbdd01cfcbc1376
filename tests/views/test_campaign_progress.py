"""A campaign's progress in numbers reached and settled, retries counted apart: adding a retry
never takes the share back (it went 100 → 75 → 88 % when counted in calls)."""

import re

from calls.models import CallLog, Campaign
from tests.helpers.campaigns import make_campaign
from tests.helpers.portal import logged_in, text_of


def progress_section(client, campaign: Campaign) -> str:
    html = client.get(campaign.get_absolute_url()).content.decode()
    return text_of(re.search(r'<section id="progress".*?</section>', html, re.S)[0])


def list_row(client, campaign: Campaign) -> str:
    html = client.get("/campaigns/").content.decode()
    return text_of(
        re.search(
            rf'<tr>\s*<td class="name"><a href="/campaigns/{campaign.pk}/".*?</tr>', html, re.S
        )[0]
    )


def test_a_retry_added_does_not_take_the_progress_back(supervisor, bridge, sound):
    campaign = make_campaign(
        bridge, audio=sound, status="running", max_attempts=2, retry_on=["no_answer"]
    )
    answered = campaign.calls.create(
        bridge=bridge, audio=sound, to="918867135123", status="answered"
    )
    missed = campaign.calls.create(
        bridge=bridge, audio=sound, to="918867135124", status="no_answer"
    )
    client = logged_in(supervisor)
    assert "100% — 2 of 2 numbers settled, 1 reached" in progress_section(client, campaign)

    CallLog.objects.create(
        bridge=bridge,
        audio=sound,
        campaign=campaign,
        to=missed.to,
        retry_of=missed,
        attempt_number=2,
        status="pending",
    )

    page = progress_section(client, campaign)
    assert "100% — 2 of 2 numbers settled, 1 reached, 1 waiting to be sent" in page
    assert "Retries, counted apart: 1 made, 0 settled, 1 waiting or awaiting its outcome." in page
    assert (
        '<progress class="progress" max="100" value="100"'
        in logged_in(supervisor).get(campaign.get_absolute_url()).content.decode()
    )
    assert "Running 100% 100% 2 / 2 settled + 1 retry" in list_row(client, campaign)
    assert answered.status == "answered"


def test_a_number_reached_on_a_retry_counts_once(supervisor, bridge, sound):
    campaign = make_campaign(
        bridge, audio=sound, status="finished", max_attempts=3, retry_on=["busy"]
    )
    first = campaign.calls.create(bridge=bridge, audio=sound, to="918867135123", status="busy")
    for attempt, status in ((2, "busy"), (3, "answered")):
        campaign.calls.create(
            bridge=bridge,
            audio=sound,
            to=first.to,
            retry_of=first,
            attempt_number=attempt,
            status=status,
        )

    page = progress_section(logged_in(supervisor), campaign)

    assert "100% — 1 of 1 number settled, 1 reached." in page
    assert "Retries, counted apart: 2 made, 2 settled." in page
