"""The campaign pages as a supervisor meets them on a desk (1366 px) and a phone (390 px): the
list fits the screen with names whole, the forms keep what was typed, and axe stays clean."""

from datetime import timedelta
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from calls.models import AudioAsset, Bridge, CallLog, Campaign, IvrFlow
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
        ("Abandoned carts, second wave", "canceled"),
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
