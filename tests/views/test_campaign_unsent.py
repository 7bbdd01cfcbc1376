"""Rows that can never be called are said before Start, with why; after, the page groups the
rows not sent (withdrawn) by their reason, instead of a bare "Not sent (withdrawn)"."""

from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
import time_machine

from calls.models import Campaign
from tests.clock import pinned_now
from tests.helpers.campaigns import make_campaign, upload
from tests.helpers.portal import logged_in, text_of

# Two Indian numbers and one in New York.
CSV = "number\n918867135123\n918867135124\n12125550123\n"
TRAI_CLASH = (
    "2 of these numbers can never be called: calling hours never open for them, as their "
    "calling window, 21:30\N{EN DASH}22:00 in each recipient\N{RIGHT SINGLE QUOTATION MARK}s "
    "own time, lies outside the TRAI hours for promotional calls to Indian numbers "
    "(09:00\N{EN DASH}21:00). On Start they are withdrawn, not sent. To call them, change the "
    "calling hours, or mark the campaign transactional if it is an OTP or a delivery update."
)


@pytest.fixture
def late_window(settings, bridge, sound) -> Campaign:
    """A promotional campaign calling 21:30 to 22:00 in each recipient's time, TRAI hours on."""
    settings.OBD_TRAI_PRESET = True
    campaign = make_campaign(
        bridge, audio=sound, window_start="21:30", window_end="22:00", window_timezone=""
    )
    upload(campaign, CSV)
    return campaign


def test_before_start_the_draft_and_the_question_say_which_rows_can_never_be_called(
    supervisor, late_window
):
    client = logged_in(supervisor)

    draft = text_of(client.get(late_window.get_absolute_url()).content.decode())
    question = text_of(client.get(f"/campaigns/{late_window.pk}/start/confirm/").content.decode())

    assert TRAI_CLASH in draft and TRAI_CLASH in question


def test_a_transactional_campaign_has_no_row_that_can_never_be_called(supervisor, late_window):
    Campaign.objects.filter(pk=late_window.pk).update(transactional=True)

    draft = text_of(logged_in(supervisor).get(late_window.get_absolute_url()).content.decode())

    assert "can never be called" not in draft


def test_no_calling_day_at_all_is_said_as_such(supervisor, bridge, sound):
    campaign = make_campaign(bridge, audio=sound, calling_days=[0], holidays=[])
    upload(campaign, "number\n918867135123\n")
    monday = pinned_now().date() + timedelta(days=(7 - pinned_now().weekday()) % 7)
    days = [(monday + timedelta(weeks=w)).isoformat() for w in range(60)]
    Campaign.objects.filter(pk=campaign.pk).update(holidays=days)

    draft = text_of(logged_in(supervisor).get(campaign.get_absolute_url()).content.decode())

    assert (
        "1 of these numbers can never be called: calling hours never open for it, as no " in draft
    )
    assert "calling day opens for them within a year (the calling days and holidays)" in draft


def test_after_start_the_rows_not_sent_are_grouped_by_reason(supervisor, late_window):
    assert late_window.start()
    late_window.claim_calls(10, timedelta(seconds=30), due=pinned_now())  # withdraws the two
    late_window.stop()  # the third, never sent

    page = unescape(
        text_of(logged_in(supervisor).get(late_window.get_absolute_url()).content.decode())
    )

    assert "Stopped before any call was sent: 3 numbers not called." in page
    assert (
        "Not sent (withdrawn), by reason: "
        "2 — Not sent: the campaign's calling days and hours never open for this number. "
        "1 — The campaign was stopped before this call was sent."
    ) in page
    assert "can never be called" not in page


def test_the_start_question_says_which_rows_wait_because_their_hours_are_closed_now(
    supervisor, settings, bridge, sound
):
    """At 22:37 in India a promotional campaign's Indian numbers wait for the TRAI hours
    (09:00-21:00); a number in New York (12:07 there) does not."""
    settings.OBD_TRAI_PRESET = True
    campaign = make_campaign(bridge, audio=sound)
    upload(campaign, CSV)
    question = f"/campaigns/{campaign.pk}/start/confirm/"

    with time_machine.travel(datetime(2026, 12, 5, 17, 7, tzinfo=UTC), tick=False):
        said = text_of(logged_in(supervisor).get(question).content.decode())
    assert (
        "2 Indian numbers are outside their calling hours now: they wait until 6 Dec 2026, "
        "09:00:00 IST."
    ) in said
    assert "outside India" not in said

    with time_machine.travel(datetime(2026, 12, 5, 6, 0, tzinfo=UTC), tick=False):  # 11:30 IST
        said = text_of(logged_in(supervisor).get(question).content.decode())
    assert "calling hours now" not in said
