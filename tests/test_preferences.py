"""Times in the reader's zone: the portal's defaults (Asia/Kolkata, region IN), a user's own zone
(calls/preferences.py, calls/middleware.py), the zone written beside every time, the call log's
days and the dashboard's "today" and hours read in that zone."""

import re
import zoneinfo
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from calls.models import CallLog, Campaign, UserPreference
from calls.preferences import canonical_zones
from tests.helpers.portal import logged_in, text_of
from tests.helpers.settings import read_settings

# 13:00:04 UTC: 18:30:04 in Kolkata, 08:00:04 in New York (EST in November).
MOMENT = datetime(2026, 11, 27, 13, 0, 4, tzinfo=UTC)


def in_zone(user, zone: str) -> Client:
    UserPreference.objects.update_or_create(user=user, defaults={"time_zone": zone})
    return logged_in(user)


def test_the_defaults_fit_the_providers_market():
    assert read_settings("TIME_ZONE", "OBD_DEFAULT_REGION") == {
        "TIME_ZONE": "Asia/Kolkata",
        "OBD_DEFAULT_REGION": "IN",
    }


def test_an_empty_default_region_asks_for_a_country_code():
    assert read_settings("OBD_DEFAULT_REGION", OBD_DEFAULT_REGION="") == {
        "OBD_DEFAULT_REGION": None
    }


def test_the_portal_zone_is_read_from_the_environment():
    assert read_settings("TIME_ZONE", TIME_ZONE="Europe/London") == {"TIME_ZONE": "Europe/London"}


def test_a_call_page_writes_its_times_with_the_zone(agent_client, bridge, sound):
    call = CallLog.objects.create(bridge=bridge, to="918867135123", audio=sound, created_at=MOMENT)

    html = agent_client.get(call.get_absolute_url()).text

    assert "<time>27 Nov 2026, 18:30:04 IST</time>" in html


def test_a_call_page_writes_its_times_in_the_users_own_zone(agent, bridge, sound):
    call = CallLog.objects.create(bridge=bridge, to="918867135123", audio=sound, created_at=MOMENT)

    html = in_zone(agent, "America/New_York").get(call.get_absolute_url()).text

    assert "<time>27 Nov 2026, 08:00:04 EST</time>" in html
    assert "IST" not in html
    assert 'title="Your time zone: change it">America/New York</a>' in html  # as people write it


def test_the_call_log_and_campaign_list_write_the_zone(supervisor, bridge, sound):
    CallLog.objects.create(
        bridge=bridge, to="918867135123", audio=sound, created_at=MOMENT, submitted_at=MOMENT
    )
    Campaign.objects.create(name="November", bridge=bridge, audio=sound, pace=2, created_at=MOMENT)
    client = logged_in(supervisor)

    assert "27 Nov, 18:30:04 IST" in text_of(client.get("/calls/").text)
    assert "27 Nov 2026, 18:30:04 IST" in text_of(client.get("/campaigns/").text)


def test_the_zone_is_shown_beside_the_users_name_and_leads_to_their_preferences(agent):
    html = in_zone(agent, "Europe/Berlin").get("/calls/").text

    assert re.search(r'<a href="/preferences/"[^>]*>Europe/Berlin</a>', html)


def test_a_user_picks_their_zone_on_the_preferences_page(agent_client, agent):
    page = agent_client.get("/preferences/")
    assert page.status_code == 200
    assert '<option value="America/New_York">America/New York</option>' in page.text

    response = agent_client.post(
        "/preferences/", {"time_zone": "America/New_York", "export_flavour": "excel"}, follow=True
    )

    assert UserPreference.objects.get(user=agent).time_zone == "America/New_York"
    assert "Times are now shown in America/New York time;" in response.text
    assert re.search(r"It is now <time[^>]*>\d+ \w+ \d{4}, [\d:]+ E[SD]T</time>", response.text)


def test_a_user_goes_back_to_the_portals_zone(agent):
    client = in_zone(agent, "America/New_York")

    client.post("/preferences/", {"time_zone": "", "export_flavour": "excel"})

    assert UserPreference.time_zone_of(agent) == ""
    assert ">Asia/Kolkata</a>" in client.get("/calls/").text


def test_an_unknown_zone_is_refused(agent_client, agent):
    response = agent_client.post(
        "/preferences/", {"time_zone": "Mars/Olympus_Mons", "export_flavour": "excel"}
    )

    assert response.status_code == 200
    assert "Select a valid choice" in response.text
    assert not UserPreference.objects.filter(user=agent).exists()


def test_a_users_zone_does_not_stay_behind_for_the_next_request(agent):
    in_zone(agent, "America/New_York").get("/calls/")

    assert timezone.get_current_timezone_name() == "Asia/Kolkata"


# --- the call log's days --------------------------------------------------------------------------


@pytest.fixture
def around_midnight(bridge, sound) -> tuple[CallLog, CallLog]:
    """27 Nov in Kolkata for both; in New York the first is still the 26th."""
    late, morning = datetime(2026, 11, 26, 20, 0, tzinfo=UTC), datetime(2026, 11, 27, 6, tzinfo=UTC)
    return tuple(
        CallLog.objects.create(bridge=bridge, to=to, audio=sound, created_at=at, submitted_at=at)
        for to, at in (("918867135101", late), ("918867135102", morning))
    )


def shown_on(client: Client, day: str) -> list[str]:
    return [c.to for c in client.get("/calls/", {"since": day, "until": day}).context["page"].rows]


def test_the_call_log_reads_its_days_in_the_users_zone(agent, around_midnight):
    late, morning = around_midnight

    assert shown_on(logged_in(agent), "27 Nov 2026") == [morning.to, late.to]
    assert shown_on(in_zone(agent, "America/New_York"), "27 Nov 2026") == [morning.to]
    assert shown_on(in_zone(agent, "America/New_York"), "26 Nov 2026") == [late.to]


def test_the_call_log_writes_its_days_as_the_pages_do_and_reads_iso_days_too(
    agent_client, around_midnight
):
    response = agent_client.get("/calls/", {"since": "2026-11-27", "until": "27 November 2026"})

    assert len(response.context["page"].rows) == 2
    assert 'name="since" value="27 Nov 2026"' in response.text
    assert 'name="until" value="27 Nov 2026"' in response.text
    assert 'type="date"' not in response.text  # a browser's picker writes the day its own way


# --- the dashboard ------------------------------------------------------------------------------


def _today_began(zone: str) -> datetime:
    return timezone.localtime(timezone=ZoneInfo(zone)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


def test_the_dashboard_counts_today_and_its_hours_in_the_users_zone(agent, bridge, sound):
    # Kiritimati (UTC+14) and Kolkata (UTC+05:30) start their days 8½ hours apart: a call just
    # after the earlier midnight is today in that zone and yesterday in the other, whatever
    # day it is in each (the clock is pinned by --now, and CI runs this at several instants).
    began = {zone: _today_began(zone) for zone in ("Pacific/Kiritimati", "Asia/Kolkata")}
    first, second = sorted(began, key=began.__getitem__)
    sent = began[first] + timedelta(seconds=1)
    CallLog.objects.create(
        bridge=bridge, to="918867135123", audio=sound, created_at=sent, submitted_at=sent
    )

    today_there = in_zone(agent, first).get("/").text
    yesterday_there = in_zone(agent, second).get("/").text

    assert re.search(r'id="stat-placed"[^>]*>1<', today_there)
    assert re.search(r'id="stat-placed"[^>]*>0<', yesterday_there)
    assert "<title>0:00 — 1 call</title>" in today_there
    assert f"by outcome, {first} time" in today_there


def test_the_zone_list_puts_common_zones_first_and_leaves_old_aliases_out(agent_client):
    field = agent_client.get("/preferences/").context["form"]["time_zone"].field
    portal, (common, first), (_, others) = field.choices

    assert portal[0] == "" and common == "Common" and first[0] == ("Asia/Kolkata", "Asia/Kolkata")
    names = [zone for zone, _ in others]
    assert "Asia/Dubai" not in names  # listed once, among the common ones
    assert {"Europe/Paris", "America/Argentina/Buenos_Aires"} <= set(names)
    assert not {"Asia/Calcutta", "US/Eastern", "Etc/GMT+4", "GB", "EST5EDT"} & set(names)
    assert len(names) < 450


def test_a_user_keeps_an_old_alias_until_they_pick_another(agent):
    client = in_zone(agent, "Asia/Calcutta")

    page = client.get("/preferences/")

    assert '<option value="Asia/Calcutta" selected>Asia/Calcutta</option>' in page.text
    client.post("/preferences/", {"time_zone": "Asia/Calcutta", "export_flavour": "plain"})
    assert UserPreference.time_zone_of(agent) == "Asia/Calcutta"


def test_a_user_in_dubai_reads_the_zones_name_not_a_bare_offset(agent, bridge, sound):
    call = CallLog.objects.create(bridge=bridge, to="918867135123", audio=sound, created_at=MOMENT)

    html = in_zone(agent, "Asia/Dubai").get(call.get_absolute_url()).text

    assert "<time>27 Nov 2026, 17:00:04 Dubai</time>" in html
    assert "+04" not in html


def test_without_the_tz_databases_list_the_alias_areas_are_still_left_out(monkeypatch):
    monkeypatch.setattr(zoneinfo, "TZPATH", ("/nonexistent",))
    canonical_zones.cache_clear()
    try:
        zones = canonical_zones()
    finally:
        canonical_zones.cache_clear()

    assert {"Asia/Kolkata", "Asia/Dubai", "UTC"} <= set(zones)
    assert not {"US/Eastern", "Etc/GMT+4", "GB", "EST5EDT"} & set(zones)
