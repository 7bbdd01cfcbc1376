"""The keys card never contradicts the counts beside it: it is redrawn with the progress it is
polled with, and while keys are looked up it says so rather than "no call answered yet"."""

import re

from tests.helpers.campaigns import make_campaign
from tests.helpers.keypresses import answered
from tests.helpers.portal import logged_in, text_of

POLL = {"HX-Request": "true", "HX-Target": "progress"}


def keys_card(html: str) -> str:
    return text_of(
        re.search(r'<section class="card" id="keypress-results".*?</section>', html, re.S)[0]
    )


def test_keys_being_looked_up_are_said_beside_the_answered_count(supervisor, bridge, otp_flow):
    campaign = make_campaign(bridge, flow=otp_flow, status="running")
    client = logged_in(supervisor)
    assert "No call of this campaign has been answered yet" in keys_card(
        client.get(campaign.get_absolute_url()).content.decode()
    )
    for n in range(4):
        answered(bridge, otp_flow, campaign=campaign, to=f"91886713512{n}", provider_id=f"p{n}")

    polled = client.get(campaign.get_absolute_url(), headers=POLL).content.decode()

    assert "Answered 4" in text_of(polled)
    assert '<section class="card" id="keypress-results" hx-swap-oob="true">' in polled
    assert keys_card(polled) == (
        "Keys pressed answered calls by the first key pressed Looking up the keys pressed in "
        "4 answered calls at the provider: they show here once known."
    )


def test_a_finished_campaign_keeps_polling_while_its_keys_are_looked_up(
    supervisor, bridge, otp_flow
):
    campaign = make_campaign(bridge, flow=otp_flow, status="finished")
    answered(bridge, otp_flow, campaign=campaign)

    html = logged_in(supervisor).get(campaign.get_absolute_url()).content.decode()

    assert re.search(r'<section id="progress" class="card" hx-get="[^"]+" hx-trigger="every', html)
