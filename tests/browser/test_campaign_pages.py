"""The campaign pages as a supervisor meets them on a desk (1366 px) and a phone (390 px): the
list fits the screen with names whole, the forms keep what was typed, and axe stays clean."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from calls.models import AudioAsset, Bridge, CallLog, Campaign, IvrFlow
from tests.browser.conftest import screenshot
from tests.clock import pinned_now

VIEWPORTS = [
    pytest.param({"width": 1366, "height": 900}, id="desk"),
    pytest.param({"width": 390, "height": 844}, id="phone"),
]
# Each word's text, and how many lines it spans on the page: a word split by the line's end
# spans two.
WORDS_SPLIT = """selector => [...document.querySelectorAll(selector)].flatMap(element => {
  const text = element.firstChild, split = [];
  for (const match of text.data.matchAll(/\\S+/g)) {
    const range = document.createRange();
    range.setStart(text, match.index);
    range.setEnd(text, match.index + match[0].length);
    const tops = new Set([...range.getClientRects()].map(rect => Math.round(rect.top)));
    if (tops.size > 1) split.push(match[0]);
  }
  return split;
})"""


def campaigns_of_every_kind() -> None:
    bridge = Bridge.objects.create(number="918068287602", label="Bengaluru")
    flow = IvrFlow.objects.create(name="Login OTP", flow_id=24, template="Hello {Name}")
    now = pinned_now()
    kinds = [
        ("November payment reminders for Karnataka", "finished"),
        ("Diwali offers — premium customers", "running"),
        ("Renewal reminders (scheduled)", "scheduled"),
        ("Abandoned carts, second wave", "stopped"),
    ]
    for name, status in kinds:
        campaign = Campaign.objects.create(
            name=name,
            bridge=bridge,
            flow=flow,
            pace=Decimal(2),
            status=status,
            start_at=now + timedelta(days=1) if status == "scheduled" else None,
        )
        for i, state in enumerate(["answered", "no_answer", "withdrawn", "pending"]):
            CallLog.objects.create(
                bridge=bridge,
                flow=flow,
                campaign=campaign,
                to=f"9188671350{i:02d}",
                status=state,
                variables={"Name": "Asha"},
            )


def page_width_overflow(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_campaign_list_fits_the_screen_with_names_whole(supervisor_page, viewport):
    campaigns_of_every_kind()
    page = supervisor_page
    page.set_viewport_size(viewport)

    page.goto("/campaigns/")

    assert page_width_overflow(page) == 0
    assert page.evaluate(WORDS_SPLIT, "td.name a") == []
    violations = Axe().run(page).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []


def test_choosing_an_audio_after_a_flow_asks_before_clearing_the_typed_values(supervisor_page):
    Bridge.objects.create(number="918068287602", label="Bengaluru")
    IvrFlow.objects.create(name="Login OTP", flow_id=24, template="Hello {Name}, your otp is {otp}")
    AudioAsset.objects.create(name="Diwali offer", url="https://cdn.example.com/diwali.mp3")
    page = supervisor_page
    page.goto("/calls/new/")
    page.select_option("#id_flow", label="Login OTP (flow 24)")
    name = page.locator('input[name="variables[Name]"]')
    name.fill("Asha")
    asked = []

    def answer(dialog, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.select_option("#id_audio", label="Diwali offer")

    assert asked == ["Play Diwali offer instead of the flow? What you typed for Name is cleared."]
    expect(page.locator("#id_audio")).to_have_value("")
    expect(page.locator("#id_flow option:checked")).to_have_text("Login OTP (flow 24)")
    expect(name).to_have_value("Asha")

    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.select_option("#id_audio", label="Diwali offer")

    expect(page.locator("#id_flow")).to_have_value("")
    expect(name).to_have_count(0)
    expect(page.locator("#id_audio option:checked")).to_have_text("Diwali offer")


def campaign_with_a_schedule_and_retries() -> Campaign:
    """A running campaign stopping tomorrow, in its calling window, retrying the unanswered:
    numbers reached, retries waiting, a row whose hours never open, keys looked up."""
    bridge = Bridge.objects.create(number="918068287602", label="Bengaluru")
    flow = IvrFlow.objects.create(
        name="Payment reminder",
        flow_id=31,
        template="Hello {Name}, your payment is due. Press 1 to pay, 9 to stop these calls.",
        choices={"1": "pay now", "9": "stop calling me"},
        stop_key="9",
    )
    now = pinned_now()
    campaign = Campaign.objects.create(
        name="December payment reminders",
        bridge=bridge,
        flow=flow,
        pace=Decimal(2),
        status="running",
        window_start="09:00",
        window_end="21:00",
        max_attempts=3,
        retry_on=["no_answer", "busy"],
        retry_minutes=30,
        start_at=now - timedelta(hours=1),
        end_at=now + timedelta(days=1),
        started_at=now - timedelta(hours=1),
        columns=[["number", "number"], ["Name", "Name"]],
    )
    rows = [
        ("answered", {"keypresses": "1", "keypresses_at": now}),
        ("answered", {"keypresses": "9", "keypresses_at": now}),
        ("answered", {}),
        ("no_answer", {}),
        ("busy", {}),
        ("pending", {}),
        ("queued", {}),
        ("withdrawn", {"error": "Not sent: the campaign's calling days and hours never open."}),
    ]
    for i, (status, extra) in enumerate(rows):
        call = CallLog.objects.create(
            bridge=bridge,
            flow=flow,
            campaign=campaign,
            to=f"9188671351{i:02d}",
            status=status,
            variables={"Name": "Asha"},
            submitted_at=None if status in ("pending", "withdrawn") else now,
            **extra,
        )
        if status in ("no_answer", "busy"):
            CallLog.objects.create(
                bridge=bridge,
                flow=flow,
                campaign=campaign,
                to=call.to,
                retry_of=call,
                attempt_number=2,
                status="answered" if status == "busy" else "pending",
                variables={"Name": "Asha"},
            )
    return campaign


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_campaign_with_a_schedule_and_retries_reads_on_a_desk_and_a_phone(
    supervisor_page, viewport
):
    campaign = campaign_with_a_schedule_and_retries()
    page = supervisor_page
    page.set_viewport_size(viewport)

    page.goto(campaign.get_absolute_url())

    progress = page.locator("#progress")
    expect(progress).to_contain_text("71% — 5 of 7 numbers settled, 4 reached")
    expect(progress).to_contain_text("Retries, counted apart: 2 made, 1 settled")
    expect(progress).to_contain_text(re.compile(r"Stops at 5 Dec 2026, 19:30:\d\d IST"))
    expect(progress).to_contain_text("calls only 09:00\N{EN DASH}21:00 Asia/Kolkata")
    assert page_width_overflow(page) == 0
    violations = Axe().run(page).response["violations"]
    assert [v["id"] for v in violations if v["impact"] in ("serious", "critical")] == []
    screenshot(page, f"campaign-{viewport['width']}")
