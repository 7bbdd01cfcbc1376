"""A support agent's day on a desk (1366 px) and on a phone (390 px): long values never widen a
page, the navigation folds into a menu, the call log keeps the status in view, empty pages say
what to do first, and axe finds nothing serious on any main page."""

import io
import json
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.management import call_command
from playwright.sync_api import Page, expect

from calls.models import (
    AudioAsset,
    Bridge,
    CallEvent,
    CallLog,
    Campaign,
    CampaignImport,
    IvrFlow,
    SetAsideRow,
)
from tests.browser.conftest import screenshot
from tests.clock import pinned_now

DESK = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = [pytest.param(DESK, id="desk"), pytest.param(PHONE, id="phone")]

# One unbroken 200-character word: what a pasted token or a runaway variable looks like.
LONG = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 4 + "-" * 20
assert len(LONG) == 200

MAIN_PAGES = {
    "dashboard": "/?period=30d",
    "call-log": "/calls/",
    "call-log-of-a-campaign": "/calls/?campaign={campaign}",
    "call-page": "/calls/{call}/",
    "place-a-call": "/calls/new/",
    "campaigns": "/campaigns/",
    "campaign-page": "/campaigns/{campaign}/",
    "campaign-importing": "/campaigns/{importing}/",
    "campaign-not-created": "/campaigns/{gone}/",
    "new-campaign": "/campaigns/new/",
    "catalogue": "/catalogue/",
    "notices": "/notices/",
    "preferences": "/preferences/",
}


def seed() -> None:
    call_command("seed_demo", stdout=io.StringIO())


def long_values() -> dict[str, int]:
    """A catalogue, a call and a campaign whose every free-text value is one very long word."""
    seed()
    bridge = Bridge.objects.create(number="918068287699", label=LONG[:100])
    flow = IvrFlow.objects.create(
        flow_id=LONG[:64], name=LONG[:100], template="Hello {Name}, " + LONG + " {Reference}"
    )
    AudioAsset.objects.create(name=LONG[:100], url=f"https://cdn.example.com/{LONG}.mp3")
    campaign = Campaign.objects.create(
        name=LONG[:100],
        bridge=bridge,
        flow=flow,
        pace=Decimal("2"),
        columns=[["number", ""], [LONG, "Name"]],
    )
    SetAsideRow.objects.create(
        campaign=campaign, line=2, values={"number": LONG}, reason=LONG + " is not a number."
    )
    Campaign.objects.filter(pk=campaign.pk).update(rows_set_aside=1)
    payload = {"bridge": bridge.number, "to": "918867135123", "variables": {"Name": LONG}}
    call = CallLog.objects.create(
        bridge=bridge,
        flow=flow,
        to="918867135123",
        name=LONG[:100],
        campaign=campaign,
        variables={"Name": LONG, "Reference": LONG},
        request_payload=payload,
        response_body=json.dumps({"message": LONG, "id": LONG}),
        http_status=422,
        provider_id=LONG[:128],
        provider_status=LONG[:32],
        status=CallLog.Status.REJECTED,
        error="The provider refused the call: " + LONG,
        recording_url=f"https://recordings.example.com/{LONG}.mp3",  # its player fits too
        submitted_at=pinned_now(),
    )
    CallLog.objects.create(  # and an ordinary one beside it
        bridge=Bridge.objects.get(number="918068287602"),
        flow=IvrFlow.objects.get(flow_id="24"),
        to="919876543210",
        variables={"Name": "Asha", "otp": "******"},
        status=CallLog.Status.ANSWERED,
        provider_id="a1b2c3",
        duration=42,
        submitted_at=pinned_now(),
    )
    CallLog.objects.create(  # a row its campaign withdrew: the longest status words there are
        bridge=bridge,
        flow=flow,
        to="919876543211",
        campaign=campaign,
        status=CallLog.Status.WITHDRAWN,
    )
    CallEvent.objects.create(
        call=call, dedupe_key="long-event", raw_status=LONG[:32], parse_error=LONG
    )
    importing = Campaign.objects.create(
        name=LONG[:100], bridge=bridge, flow=flow, pace=Decimal("2"), status="importing"
    )
    CampaignImport.objects.create(  # no worker here: it stays half read
        campaign=importing,
        filename=LONG + ".csv",
        size=12_345_678,
        content=b"",
        state="reading",
        length=1000,
        position=420,
        accepted=123_456,
        set_aside=789,
    )
    gone = CampaignImport.objects.create(  # its campaign removed with it
        campaign_id=importing.pk + 1000,
        made_campaign=True,
        filename=LONG + ".csv",
        size=10,
        content=b"",
        state="failed",
        error=f"Line 2 contains {LONG}.",
    )
    return {
        "call": call.pk,
        "campaign": campaign.pk,
        "importing": importing.pk,
        "gone": gone.campaign_id,
    }


def page_width_overflow(page: Page) -> int:
    """How many pixels the page is wider than its viewport (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_long_values_never_make_a_main_page_wider_than_the_screen(supervisor_page, viewport):
    ids = long_values()
    page = supervisor_page
    page.set_viewport_size(viewport)
    too_wide = {}
    for name, path in MAIN_PAGES.items():
        page.goto(path.format(**ids))
        if overflow := page_width_overflow(page):
            too_wide[name] = overflow
        screenshot(page, f"long-values-{name}-{viewport['width']}")
    assert too_wide == {}, f"pages wider than {viewport['width']} px, by px: {too_wide}"


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_every_main_page_passes_axe_without_serious_violations(supervisor_page, viewport):
    ids = long_values()
    page = supervisor_page
    page.set_viewport_size(viewport)
    axe = Axe()
    found = {}
    for name, path in MAIN_PAGES.items():
        page.goto(path.format(**ids))
        results = axe.run(page)
        serious = [
            f"{v['id']} ({v['impact']}) at {node['target']}: {node['failureSummary']}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
            for node in v["nodes"][:3]
        ]
        if serious:
            found[name] = serious
    assert found == {}, json.dumps(found, indent=1)


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_navigation_fits_and_folds_into_a_menu_on_a_phone(supervisor_page, viewport):
    seed()
    page = supervisor_page
    page.set_viewport_size(viewport)
    page.goto("/calls/")
    toggle = page.get_by_role("button", name="Menu")
    calls_link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns")
    if viewport is DESK:
        expect(toggle).to_be_hidden()
        expect(calls_link).to_be_visible()
    else:
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(calls_link).to_be_hidden()
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(calls_link).to_be_visible()
        expect(page.get_by_role("button", name="Log out")).to_be_visible()
        screenshot(page, "phone-menu-open")
        page.keyboard.press("Escape")
        expect(calls_link).to_be_hidden()
        toggle.click()
        calls_link.click()
        page.wait_for_url("**/campaigns/")
    assert page_width_overflow(page) == 0


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_call_log_keeps_status_in_view_and_numbers_on_one_line(supervisor_page, viewport):
    long_values()
    page = supervisor_page
    page.set_viewport_size(viewport)
    page.goto("/calls/")
    rows = page.locator("table.calls tbody tr")
    expect(rows).to_have_count(2)
    for row in rows.all():
        status = row.locator(".status").bounding_box()
        assert status
        assert status["x"] + status["width"] <= viewport["width"]
        lines = row.locator("td.number a").evaluate("a => a.getClientRects().length")
        assert lines == 1, "the number wraps"
    screenshot(page, f"call-log-{viewport['width']}")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_call_log_s_less_used_filters_fold_on_a_phone_unless_in_use(supervisor_page, viewport):
    page = supervisor_page
    page.set_viewport_size(viewport)
    page.goto("/calls/")
    expect(page.get_by_label("Search")).to_be_visible()
    expect(page.get_by_label("Status")).to_be_visible()
    bridge = page.get_by_label("Bridge")
    if viewport is DESK:
        expect(bridge).to_be_visible()
        expect(page.get_by_text("More filters")).to_be_hidden()
    else:
        expect(bridge).to_be_hidden()
        page.get_by_text("More filters").click()
        expect(bridge).to_be_visible()
        page.goto("/calls/?kind=single")  # a folded filter in use stays in view
        expect(page.locator("select[name=kind]")).to_be_visible()
    screenshot(page, f"call-log-filters-{viewport['width']}")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_to_field_brings_up_a_phone_keypad(supervisor_page, viewport):
    seed()
    page = supervisor_page
    page.set_viewport_size(viewport)
    page.goto("/calls/new/")
    to = page.get_by_label("To", exact=True)
    expect(to).to_have_attribute("type", "tel")
    expect(to).to_have_attribute("inputmode", "tel")
    to.fill("+91 98765 43210")
    assert page_width_overflow(page) == 0
    screenshot(page, f"place-a-call-{viewport['width']}")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_an_empty_dashboard_and_call_log_invite_the_first_call(supervisor_page, viewport):
    seed()
    page = supervisor_page
    page.set_viewport_size(viewport)
    for path in ("/", "/calls/"):
        page.goto(path)
        main = page.get_by_role("main")
        expect(main).to_contain_text("No calls")
        expect(main.get_by_role("link", name="Start a campaign")).to_be_visible()
        screenshot(page, f"empty-{'dashboard' if path == '/' else 'call-log'}-{viewport['width']}")
        main.get_by_role("link", name="Place a call").last.click()
        page.wait_for_url("**/calls/new/")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_an_agent_on_an_empty_call_log_is_offered_a_call_not_a_campaign(
    page, transactional_db, django_user_model, viewport
):
    from tests.browser.conftest import log_in
    from tests.conftest import _user

    seed()
    _user(django_user_model, "ana", "Agents")
    log_in(page, "ana", "pw-ana")
    page.set_viewport_size(viewport)
    page.goto("/calls/")
    main = page.get_by_role("main")
    expect(main.locator("td.empty").get_by_role("link", name="Place a call")).to_be_visible()
    expect(main.get_by_role("link", name="Start a campaign")).to_have_count(0)


def in_flight_call(to: str) -> CallLog:
    return CallLog.objects.create(
        bridge=Bridge.objects.get(number="918068287602"),
        audio=AudioAsset.objects.get(sound_id__startswith="39888925"),
        to=to,
        status=CallLog.Status.QUEUED,
        provider_id="live-" + to,
        submitted_at=pinned_now(),
    )


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_status_changes_on_the_call_log_and_call_page_are_announced(supervisor_page, viewport):
    seed()
    page = supervisor_page
    page.set_viewport_size(viewport)
    announcer = page.locator("#announcer")

    call = in_flight_call("919876540002")
    page.goto("/calls/")
    expect(announcer).to_have_attribute("aria-live", "polite")
    page.wait_for_timeout(2500)  # a poll that changes nothing says nothing
    expect(announcer).to_have_text("")
    CallLog.objects.filter(pk=call.pk).update(status=CallLog.Status.BUSY)
    expect(announcer).to_have_text(f"Call #{call.pk} to +91 98765 40002: Busy", timeout=30_000)

    call = in_flight_call("919876543210")
    page.goto(f"/calls/{call.pk}/")
    CallLog.objects.filter(pk=call.pk).update(status=CallLog.Status.ANSWERED, duration=30)
    expect(announcer).to_have_text(f"Call #{call.pk} to +91 98765 43210: Answered", timeout=30_000)
