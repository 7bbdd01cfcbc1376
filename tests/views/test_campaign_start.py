"""A campaign's start is seen before Start: the draft and the start question say when it starts,
in the reader's zone; a start in the past is refused; the window is said in words that hold
with or without a zone."""

from datetime import timedelta

from calls.models import Campaign
from tests.clock import pinned_now
from tests.helpers.campaigns import upload
from tests.helpers.portal import campaign_form, logged_in, text_of

CSV = "number,Name,otp\n918867135123,Asha,1\n"


def test_the_draft_and_the_start_question_say_when_it_starts_with_its_zone(supervisor, campaign):
    upload(campaign, CSV)
    start = pinned_now() + timedelta(hours=2)  # 21:30 IST
    Campaign.objects.filter(pk=campaign.pk).update(
        start_at=start, end_at=start + timedelta(hours=1)
    )
    client = logged_in(supervisor)

    draft = text_of(client.get(campaign.get_absolute_url()).content.decode())
    question = text_of(client.get(f"/campaigns/{campaign.pk}/start/confirm/").content.decode())

    assert (
        "Starts at 4 Dec 2026, 21:30:00 IST once you press Start; stops at 4 Dec 2026, 22:30:00 IST."
        in draft
    )
    assert "It starts at 4 Dec 2026, 21:30:00 IST, not now: until then it is scheduled." in question
    assert "It stops at 4 Dec 2026, 22:30:00 IST." in question


def test_a_start_time_that_passed_since_is_said_before_start(supervisor, campaign):
    upload(campaign, CSV)
    Campaign.objects.filter(pk=campaign.pk).update(start_at=pinned_now() - timedelta(hours=3))

    question = text_of(
        logged_in(supervisor).get(f"/campaigns/{campaign.pk}/start/confirm/").content.decode()
    )

    assert "Its start time, 4 Dec 2026, 16:30:00 IST, has passed: it starts now." in question


def test_a_start_in_the_past_is_refused_as_the_call_form_refuses_a_past_call_at(
    supervisor, bridge, otp_flow
):
    past = (pinned_now() - timedelta(hours=3)).astimezone().strftime("%Y-%m-%dT%H:%M")

    response = logged_in(supervisor).post(
        "/campaigns/new/", campaign_form(bridge, otp_flow, CSV.encode(), start_at=past)
    )

    assert response.status_code == 200 and not Campaign.objects.exists()
    assert response.context["form"].errors["start_at"] == [
        "That time has passed: leave it empty to start when you press Start."
    ]


def test_start_at_and_stop_at_name_their_zone(supervisor):
    page = text_of(logged_in(supervisor).get("/campaigns/new/").content.decode())

    assert "Start at (Asia/Kolkata)" in page and "Stop at (Asia/Kolkata)" in page


def test_a_window_in_each_recipient_s_time_is_said_without_empty_brackets(supervisor, campaign):
    upload(campaign, CSV)
    Campaign.objects.filter(pk=campaign.pk).update(
        window_start="21:30", window_end="22:00", window_timezone=""
    )
    client = logged_in(supervisor)

    page = text_of(client.get(campaign.get_absolute_url()).content.decode())
    question = text_of(client.get(f"/campaigns/{campaign.pk}/start/confirm/").content.decode())

    assert (
        "calls only 21:30\N{EN DASH}22:00 in each recipient\N{RIGHT SINGLE QUOTATION MARK}s own time ·"
        in page
        and "()" not in page
    )
    assert (
        "(longer outside 21:30\N{EN DASH}22:00 in each recipient\N{RIGHT SINGLE QUOTATION MARK}s own time)."
        in question
    )
    assert " )" not in question
