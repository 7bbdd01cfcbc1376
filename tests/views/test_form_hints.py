"""What the forms say around their fields: the number's hint follows the default region, and
notice settings say they were saved."""

from tests.helpers.portal import logged_in, text_of


def test_the_number_hint_says_a_number_in_the_default_region_needs_no_country_code(settings, agent):
    settings.OBD_DEFAULT_REGION = "IN"
    page = text_of(logged_in(agent).get("/calls/new/").content.decode())
    assert (
        "With country code, e.g. +91 88671 35123, or a number in India without it, "
        "e.g. 081234 56789"
    ) in page

    settings.OBD_DEFAULT_REGION = None
    page = text_of(logged_in(agent).get("/calls/new/").content.decode())
    assert "With country code, e.g. +91 88671 35123" in page and "without it" not in page


def test_notice_settings_save_with_a_confirmation(supervisor):
    client = logged_in(supervisor)

    response = client.post("/notices/", {"notify_failures_over": "10"}, follow=True)

    assert response.redirect_chain == [("/notices/", 302)]
    assert "Your notice settings are saved." in text_of(response.content.decode())
