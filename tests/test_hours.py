"""The recipient's calling hours (calls/hours.py, CampaignPolicy.opens_for, claims): the
number's own zone, the TRAI preset for Indian numbers unless transactional, calling days and
holidays; rows outside their hours wait without holding up the others; schedules (start, end,
single calls "at" a later time and their lost sends), all on a fake clock."""

from datetime import time, timedelta

import pytest
from django.conf import settings

from calls.models import CallLog, Campaign
from calls.schedules import LOST_AFTER, cancel_scheduled, queue_overdue_calls, waiting_calls
from tests.clock import pinned_now
from tests.helpers.campaigns import make_campaign, number, running_campaign, upload, utc
from tests.helpers.dispatch import FakeClock, FakeGateway, dispatcher

NEW_YORK = "12125551234"
MOSCOW_MOBILE = "79161234567"  # phonenumbers: one of 16 zones, UTC+2 to UTC+12


@pytest.fixture
def trai(settings):
    settings.OBD_TRAI_PRESET = True


@pytest.mark.parametrize(
    ("moment", "opens"),
    [
        (utc(3, 29), utc(3, 30)),  # 08:59 in Kolkata → 09:00
        (utc(3, 30), utc(3, 30)),  # 09:00: open
        (utc(15, 29), utc(15, 29)),  # 20:59: open
        (utc(15, 30), utc(3, 30, day=3)),  # 21:00 → 09:00 tomorrow
    ],
)
def test_trai_hours_apply_to_indian_numbers_in_their_time(bridge, sound, trai, moment, opens):
    campaign = make_campaign(bridge, audio=sound)
    assert campaign.opens_for(number(0), moment) == opens


def test_a_transactional_campaign_is_exempt_from_the_trai_hours(bridge, sound, trai):
    campaign = make_campaign(bridge, audio=sound, transactional=True)
    assert campaign.opens_for(number(0), utc(20)) == utc(20)  # 01:30 in Kolkata


def test_the_trai_hours_do_not_apply_to_other_countries(bridge, sound, trai):
    campaign = make_campaign(bridge, audio=sound)
    assert campaign.opens_for(NEW_YORK, utc(20)) == utc(20)  # 15:00 in New York


def test_a_window_in_the_recipients_zone_is_read_in_each_numbers_own_time(bridge, sound):
    campaign = make_campaign(
        bridge, audio=sound, window_start=time(9), window_end=time(17), window_timezone=""
    )
    assert campaign.opens_for(NEW_YORK, utc(12)) == utc(14)  # 07:00 in New York → 09:00 EST
    assert campaign.opens_for(number(0), utc(12)) == utc(3, 30, day=3)  # 17:30 → 09:00
    assert campaign.opens_for(number(0), utc(11, 29)) == utc(11, 29)  # 16:59 in Kolkata
    assert campaign.in_window(utc(23))  # the campaign as a whole is never closed


def test_calling_days_and_holidays_are_skipped_in_the_recipients_calendar(bridge, sound, trai):
    # 2 Nov 2026 is a Monday: a campaign calling Tuesday to Friday, with the 3rd a holiday.
    campaign = make_campaign(
        bridge, audio=sound, calling_days=[1, 2, 3, 4], holidays=["2026-11-03"]
    )
    assert campaign.opens_for(number(0), utc(5)) == utc(3, 30, day=4)


def test_a_number_with_several_zones_is_called_only_when_every_one_is_in_its_hours(bridge, sound):
    campaign = make_campaign(
        bridge, audio=sound, window_start=time(9), window_end=time(21), window_timezone=""
    )
    # 09:00 to 21:00 from UTC+2 to UTC+12 in common: 07:00 to 09:00 UTC.
    assert campaign.opens_for(MOSCOW_MOBILE, utc(12)) == utc(7, day=3)
    assert campaign.opens_for(MOSCOW_MOBILE, utc(7, 30)) == utc(7, 30)


def test_no_calling_day_means_the_rows_are_withdrawn_not_left_waiting(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=1, calling_days=[])
    clock = FakeClock()
    assert dispatcher(campaign, FakeGateway(now=clock.now), clock).run() == "empty"
    assert campaign.calls.get().status == "withdrawn"


def test_rows_outside_their_hours_wait_and_do_not_hold_up_the_others(bridge, sound, trai):
    campaign = make_campaign(bridge, audio=sound, pace="1")
    upload(campaign, f"number\n{number(0)}\n{NEW_YORK}\n{number(1)}\n")
    assert campaign.start()
    clock = FakeClock(utc(20))  # 01:30 in Kolkata, 15:00 in New York
    gateway = FakeGateway(now=clock.now)
    worker = dispatcher(campaign, gateway, clock)

    assert worker.run() == "later"
    assert gateway.numbers == [NEW_YORK]
    assert worker.resume_at == utc(3, 30, day=3)  # 09:00 in Kolkata
    waiting = campaign.calls.filter(status="pending")
    assert set(waiting.values_list("not_before", flat=True)) == {utc(3, 30, day=3)}

    clock.moment = worker.resume_at
    assert worker.run() == "empty"
    assert gateway.numbers == [NEW_YORK, number(0), number(1)]
    assert all(sent.at >= utc(3, 30, day=3) for sent in gateway.sent[1:])


# --- schedules ------------------------------------------------------------------------------------


def test_a_campaign_with_a_start_time_waits_scheduled_and_can_be_changed_until_it_starts(
    bridge, sound
):
    campaign = make_campaign(bridge, audio=sound)
    upload(campaign, f"number\n{number(0)}\n")
    later = pinned_now() + timedelta(days=1)
    assert campaign.reschedule(later, None)
    assert campaign.start() and campaign.status == "scheduled"
    assert not campaign.begin_if_due(later - timedelta(minutes=1))
    assert campaign.reschedule(later + timedelta(hours=1), None)
    assert campaign.unschedule() and campaign.status == "draft"
    assert campaign.start() and campaign.begin_if_due(later + timedelta(hours=1))
    assert campaign.status == "running"
    assert not campaign.reschedule(None, None)  # started: too late to change


def test_at_its_end_time_a_campaign_stops_and_says_why_rows_were_not_sent(bridge, sound):
    clock = FakeClock()
    campaign = running_campaign(
        bridge, sound, rows=5, pace="1", end_at=clock.now() + timedelta(seconds=1.5)
    )
    gateway = FakeGateway(now=clock.now)

    assert dispatcher(campaign, gateway, clock).run() == "ended"

    assert len(gateway.sent) == 2
    campaign.refresh_from_db()
    assert campaign.status == "finished"
    unsent = campaign.calls.filter(status="withdrawn")
    assert unsent.count() == 3
    assert set(unsent.values_list("error", flat=True)) == {
        "Not sent: the campaign's end time passed."
    }


def test_a_single_call_whose_send_was_lost_is_queued_again_once_a_while_past_its_time(
    bridge, sound, sends
):
    at = utc(4, 30)
    call = CallLog.objects.create(bridge=bridge, audio=sound, to=number(0), not_before=at)

    assert queue_overdue_calls(at) == 0  # its own task may still come
    assert list(waiting_calls()) == [call]
    assert queue_overdue_calls(at + LOST_AFTER) == 1
    lease = timedelta(seconds=settings.OBD_CLAIM_LEASE_SECONDS)
    assert queue_overdue_calls(at + LOST_AFTER + lease) == 0  # leased to the task queued

    assert sends.run() == ["queued"]
    assert sends.run() == []
    call.refresh_from_db()
    assert call.status == "queued"
    assert queue_overdue_calls(at + timedelta(minutes=5)) == 0  # sent: never again
    assert not cancel_scheduled(call)  # sent: too late


def test_a_scheduled_call_canceled_before_its_time_is_never_sent(bridge, sound, sends):
    call = CallLog.objects.create(bridge=bridge, audio=sound, to=number(0), not_before=utc(4))
    assert cancel_scheduled(call)
    assert call.status == "withdrawn" and call.error == "Canceled before it was sent."
    assert queue_overdue_calls(utc(5)) == 0 and sends.run() == []


def test_the_trai_preset_is_on_by_default():
    from tests.helpers.settings import read_settings

    assert read_settings("OBD_TRAI_PRESET") == {"OBD_TRAI_PRESET": True}


def test_a_campaign_is_scheduled_and_the_list_says_for_when(bridge, sound):
    assert Campaign.Status.SCHEDULED in Campaign.ACTIONS_FROM["stop"]
