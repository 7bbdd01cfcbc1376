"""Starting and stopping a campaign are asked first, on a desk (1366 px) with JavaScript and on a
phone (390 px) without it; afterwards the withdrawn rows say "not sent", unlike a call the
customer's side hung up."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from calls.models import Bridge, CallLog, Campaign, IvrFlow
from tests.browser.conftest import close, log_in, screenshot
from tests.clock import pinned_now
from tests.conftest import _user
from tests.helpers.campaigns import upload

CSV = "number,Name,otp\n+91 98765 43211,Ravi,111111\n+91 98765 43212,Mina,222222\n"


@pytest.fixture
def make_page(browser, live_server, transactional_db, django_user_model):
    """A logged-in supervisor's page at a width, with or without JavaScript."""
    _user(django_user_model, "sam", "Supervisors", is_staff=True)
    contexts = []

    def make(width: int, javascript: bool):
        context = browser.new_context(
            base_url=live_server.url,
            viewport={"width": width, "height": 900},
            java_script_enabled=javascript,
        )
        context.set_default_timeout(20_000)  # generous: CI machines are small and busy
        contexts.append(context)
        page = context.new_page()
        log_in(page, "sam", "pw-sam")
        return page

    yield make
    for context in contexts:
        close(context)


def draft() -> Campaign:
    bridge = Bridge.objects.create(number="918068287602", label="Bengaluru")
    flow = IvrFlow.objects.create(
        name="Login OTP", flow_id=24, template="Hello {Name}, your otp is {otp}"
    )
    campaign = Campaign.objects.create(
        name="Login reminders", bridge=bridge, flow=flow, pace=Decimal(2)
    )
    upload(campaign, CSV)
    return campaign


@pytest.mark.parametrize(
    ("width", "javascript"),
    [pytest.param(1366, True, id="desk"), pytest.param(390, False, id="phone-no-js")],
)
def test_start_and_stop_are_asked_first_and_unsent_rows_say_so(make_page, width, javascript):
    page = make_page(width, javascript)
    campaign = draft()
    hung_up = CallLog.objects.create(
        bridge=campaign.bridge,
        to="919876540007",
        flow=campaign.flow,
        status="canceled",
        provider_status="CANCEL",
        submitted_at=pinned_now(),
    )
    page.goto(campaign.get_absolute_url())

    page.click("text=Start calling 2 numbers")
    expect(page.locator("h1")).to_have_text("Start calling 2 numbers?")
    expect(page.locator("main")).to_contain_text("At 2 calls/s this takes about 1 second.")
    screenshot(page, f"campaign-start-question-{width}")
    page.click("text=Not now")
    campaign.refresh_from_db()
    assert campaign.status == "draft"

    page.click("text=Stop campaign")
    expect(page.locator("h1")).to_have_text("Stop “Login reminders”?")
    expect(page.locator("main")).to_contain_text("2 calls not sent yet will never be sent.")
    screenshot(page, f"campaign-stop-question-{width}")
    page.click("button:has-text('Yes, stop the campaign')")

    page.wait_for_url(f"**{campaign.get_absolute_url()}")
    progress = page.locator("#progress")
    expect(progress.locator("h2 .status")).to_have_text("Stopped before sending")
    expect(progress).to_contain_text("Stopped before any call was sent: 2 numbers not called.")
    expect(progress).not_to_contain_text("100%")
    expect(progress.locator(".counts")).to_contain_text("Not sent (withdrawn) 2")
    screenshot(page, f"campaign-stopped-{width}")
    assert set(campaign.calls.values_list("status", flat=True)) == {"withdrawn"}

    page.goto(campaign.calls.first().get_absolute_url())
    expect(page.locator(".outcome .status")).to_have_text("Not sent (withdrawn)")
    screenshot(page, f"call-withdrawn-{width}")
    page.goto(hung_up.get_absolute_url())
    expect(page.locator(".outcome .status")).to_have_text("Hung up")
    expect(page.locator(".outcome")).to_contain_text("Caller hung up before the customer answered")
    screenshot(page, f"call-hung-up-{width}")
