"""Campaign (calls/models/campaigns.py): row claims, the state machine of its actions, its
progress and its calling window."""

from datetime import time as clock_time
from datetime import timedelta

import pytest

from calls.models import CallLog, Campaign
from tests.helpers.campaigns import make_campaign, number, running_campaign, upload, utc


def test_a_row_is_claimed_by_one_worker_only(campaign):
    upload(campaign, "number,Name,otp\n918867135123,Asha,1\n")
    first, second = CallLog.objects.get(), CallLog.objects.get()

    assert first.begin_sending() is True
    assert second.begin_sending() is False
    assert campaign.claim_calls(5, timedelta(minutes=1)) == []


# --- start, pause, resume, stop -----------------------------------------------------------------


ALLOWED = {
    "draft": {"start", "stop"},
    "running": {"pause", "stop"},
    "paused": {"resume", "stop"},
    "finished": set(),
    "stopped": set(),
}


AFTER = {"start": "running", "pause": "paused", "resume": "running", "stop": "stopped"}


@pytest.mark.parametrize("status", list(ALLOWED))
@pytest.mark.parametrize("action", list(AFTER))
def test_each_action_is_allowed_only_from_its_states(campaign, status, action):
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.refresh_from_db()
    allowed = action in ALLOWED[status]

    assert getattr(campaign, action)() is allowed

    campaign.refresh_from_db()
    assert campaign.status == (AFTER[action] if allowed else status)


def test_progress_counts_calls_by_status_and_the_share_settled(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=4)
    for i, status in enumerate(["queued", "answered", "busy"], start=1):
        CallLog.objects.filter(to=number(i)).update(status=status)

    progress = campaign.progress()

    assert progress["counts"] == {"pending": 1, "queued": 1, "answered": 1, "busy": 1}
    assert (progress["total"], progress["done"], progress["percent"]) == (4, 2, 50)
    assert progress["waiting"] == 1
    assert Campaign.progress_of([campaign]) == {campaign.pk: progress}


# --- the calling window ---------------------------------------------------------------------------


NINE_TO_EIGHT = (clock_time(9), clock_time(20))


OVERNIGHT = (clock_time(22), clock_time(6))


@pytest.mark.parametrize(
    ("window", "zone", "moment", "inside"),
    [
        (NINE_TO_EIGHT, "Asia/Kolkata", utc(3, 29), False),  # 08:59 in Kolkata
        (NINE_TO_EIGHT, "Asia/Kolkata", utc(3, 30), True),  # 09:00
        (NINE_TO_EIGHT, "Asia/Kolkata", utc(14, 29), True),  # 19:59
        (NINE_TO_EIGHT, "Asia/Kolkata", utc(14, 30), False),  # 20:00: the end is outside
        (NINE_TO_EIGHT, "Europe/London", utc(3, 30), False),  # 03:30 in London
        (NINE_TO_EIGHT, "Europe/London", utc(14, 30), True),
        (OVERNIGHT, "Asia/Kolkata", utc(16, 30), True),  # 22:00
        (OVERNIGHT, "Asia/Kolkata", utc(0, 29), True),  # 05:59
        (OVERNIGHT, "Asia/Kolkata", utc(0, 30), False),  # 06:00
        (OVERNIGHT, "Asia/Kolkata", utc(6, 30), False),  # noon
        ((None, None), "Asia/Kolkata", utc(21), True),  # no window: always
    ],
)
def test_in_window_reads_the_time_in_the_campaigns_time_zone(
    bridge, sound, window, zone, moment, inside
):
    campaign = make_campaign(
        bridge, audio=sound, window_start=window[0], window_end=window[1], window_timezone=zone
    )

    assert campaign.in_window(moment) is inside


@pytest.mark.parametrize(
    ("window", "zone", "moment", "opens"),
    [
        (NINE_TO_EIGHT, "Asia/Kolkata", utc(15, 30), utc(3, 30, day=3)),  # 21:00 → 09:00 tomorrow
        (NINE_TO_EIGHT, "Asia/Kolkata", utc(2), utc(3, 30)),  # 07:30 → 09:00 today
        (OVERNIGHT, "Asia/Kolkata", utc(1, 30), utc(16, 30)),  # 07:00 → 22:00 today
        (OVERNIGHT, "Asia/Kolkata", utc(6, 30), utc(16, 30)),  # noon → 22:00 today
        # London moves its clocks on 29 March 2026: 09:00 that day is 08:00 UTC.
        (NINE_TO_EIGHT, "Europe/London", utc(21, day=28, month=3), utc(8, day=29, month=3)),
    ],
)
def test_window_opens_after_gives_the_next_opening(bridge, sound, window, zone, moment, opens):
    campaign = make_campaign(
        bridge, audio=sound, window_start=window[0], window_end=window[1], window_timezone=zone
    )

    assert campaign.window_opens_after(moment) == opens
