"""A person reads every time with its zone, and switches the portal to their own zone."""

from datetime import UTC, datetime

from playwright.sync_api import expect

from calls.models import Bridge, CallLog, IvrFlow
from tests.browser.conftest import screenshot

# 13:00:04 UTC: 18:30:04 in Kolkata, 08:00:04 in New York (EST in November).
MOMENT = datetime(2026, 11, 27, 13, 0, 4, tzinfo=UTC)


def test_a_supervisor_reads_times_with_their_zone_and_switches_to_their_own(supervisor_page):
    call = CallLog.objects.create(
        bridge=Bridge.objects.create(number="918068287602", label="Bengaluru"),
        to="918867135123",
        flow=IvrFlow.objects.create(flow_id="24", name="Login OTP"),
        status="queued",
        created_at=MOMENT,
        submitted_at=MOMENT,
    )
    page = supervisor_page
    page.goto(call.get_absolute_url())
    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text("27 Nov 2026, 18:30:04 IST")
    screenshot(page, "time-zone-portal")

    page.get_by_role("link", name="Asia/Kolkata").click()
    expect(page.locator("h1")).to_have_text("Your preferences")
    page.select_option("#id_time_zone", "America/New_York")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Times are now shown in America/New York time;")).to_be_visible()
    expect(page.get_by_role("link", name="America/New York")).to_be_visible()
    screenshot(page, "time-zone-preferences")

    page.goto(call.get_absolute_url())
    expect(timeline).to_contain_text("27 Nov 2026, 08:00:04 EST")
    expect(timeline).not_to_contain_text("IST")
    page.goto("/calls/")
    expect(page.locator(f"#call-{call.pk}")).to_contain_text("27 Nov, 08:00:04 EST")
    screenshot(page, "time-zone-call-list")
