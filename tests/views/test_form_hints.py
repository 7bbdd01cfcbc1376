"""What the forms say around their fields: the number's hint follows the default region, and
notice settings say they were saved."""

import re

import pytest

from calls.models import CallLog, Campaign
from tests.helpers.portal import call_form, campaign_form, logged_in, text_of


def test_the_number_hint_says_a_number_in_the_default_region_needs_no_country_code(settings, agent):
    settings.OBD_DEFAULT_REGION = "IN"
    page = text_of(logged_in(agent).get("/calls/new/").content.decode())
    assert (
        "With country code, e.g. +91 88671 35123, or a number in India without it, "
        "e.g. 081234 56789"
    ) in page

    for unknown in (None, "ZZ"):  # none, or one phonenumbers does not know
        settings.OBD_DEFAULT_REGION = unknown
        page = text_of(logged_in(agent).get("/calls/new/").content.decode())
        assert "With country code, e.g. +91 88671 35123" in page and "without it" not in page


def test_notice_settings_save_with_a_confirmation(supervisor):
    client = logged_in(supervisor)

    response = client.post("/notices/", {"notify_failures_over": "10"}, follow=True)

    assert response.redirect_chain == [("/notices/", 302)]
    assert "Your notice settings are saved." in text_of(response.content.decode())


def play_fieldset(html: str) -> str:
    return text_of(re.search(r'<fieldset class="play">.*?</fieldset>', html, re.S)[0])


@pytest.mark.parametrize(
    ("both", "message"),
    [
        (True, "Choose an IVR flow or an audio, not both."),
        (False, "Choose an IVR flow or an audio to play."),
    ],
)
def test_the_flow_or_audio_error_is_said_beside_the_fields_of_both_forms(
    supervisor, bridge, otp_flow, sound, both, message
):
    client = logged_in(supervisor)
    flow = otp_flow if both else None
    call = call_form(bridge, flow, sound if both else None, **{"variables[Name]": "Asha"})
    campaign = campaign_form(
        bridge, flow, b"number\n918867135123\n", audio=sound.pk if both else ""
    )

    for response in (client.post("/calls/new/", call), client.post("/campaigns/new/", campaign)):
        assert response.status_code == 200
        assert message in play_fieldset(response.content.decode())
    assert not Campaign.objects.exists() and not CallLog.objects.exists()


def test_after_any_error_the_campaign_form_says_to_choose_the_csv_again(
    supervisor, bridge, otp_flow
):
    response = logged_in(supervisor).post(
        "/campaigns/new/", campaign_form(bridge, otp_flow, b"number\n918867135123\n", pace="0")
    )

    form = response.context["form"]
    assert form.errors["csv_file"] == ["Choose the CSV file again: it is not kept after an error."]
    assert "pace" in form.errors
