"""On a phone (390 px) and on a desk (1366 px): the recording player takes its card's width so
its seek bar can be used, every small control is a tap target of at least 24 x 24 px (WCAG 2.2,
2.5.8), the keys chart gives way to its table on a phone, and axe finds nothing serious."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Locator, Page, expect

from calls.models import CallLog, IvrFlow
from tests.browser.conftest import screenshot
from tests.helpers.campaigns import make_campaign
from tests.helpers.keypresses import answered

DESK = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = [pytest.param(DESK, id="desk"), pytest.param(PHONE, id="phone")]
TAP = 24  # px, WCAG 2.2 success criterion 2.5.8 (Target Size, Minimum)


@pytest.fixture
def answered_campaign(bridge) -> tuple[CallLog, CallLog]:
    """A finished campaign whose calls were answered and keys looked up; one has a recording."""
    flow = IvrFlow.objects.create(
        flow_id="31",
        name="Delivery check",
        template="Hello {Name}, press 1 to confirm, 2 to reschedule",
        choices={"1": "confirm", "2": "reschedule"},
    )
    campaign = make_campaign(bridge, flow=flow, status="finished")
    calls = [
        answered(
            bridge,
            flow,
            to=f"91987654124{n}",
            campaign=campaign,
            name=campaign.name,
            provider_id=f"5b6c7d8e-0000-4000-8000-00000000000{n}",
            keypresses=keys,
            keypresses_at=campaign.created_at,
            recording_url="https://sandbox.invalid/1.wav" if n == 0 else "",
        )
        for n, keys in enumerate(["1", "2", "1"])
    ]
    return calls[0], calls[1]


def small_targets(targets: Locator) -> list[str]:
    """Each visible target smaller than 24 x 24 px, with its size."""
    small = []
    for index in range(targets.count()):
        target = targets.nth(index)
        box = target.bounding_box()
        if box and target.is_visible() and (box["width"] < TAP or box["height"] < TAP):
            small.append(
                f"{target.evaluate('e => e.outerHTML')[:80]}: {box['width']:.0f}x{box['height']:.0f}"
            )
    return small


def serious_axe_violations(page: Page) -> list[str]:
    return [
        f"{v['id']} at {node['target']}"
        for v in Axe().run(page).response["violations"]
        if v["impact"] in ("serious", "critical")
        for node in v["nodes"][:3]
    ]


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_recording_player_takes_the_cards_width_and_its_open_link_is_a_tap_target(
    supervisor_page, answered_campaign, viewport
):
    recorded, _ = answered_campaign
    page = supervisor_page
    page.set_viewport_size(viewport)
    page.goto(recorded.get_absolute_url())

    player = page.locator("audio.recording").bounding_box()
    card = page.locator("section.outcome").bounding_box()
    assert player and card
    assert player["width"] >= card["width"] * (0.85 if viewport is PHONE else 0.5)
    if viewport is PHONE:
        assert player["width"] >= 300  # the seek bar is a bar, not a dot
    assert small_targets(page.locator("a.open-recording")) == []
    assert serious_axe_violations(page) == []
    screenshot(page, f"phone-recording-{viewport['width']}")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_number_links_in_the_call_log_are_tap_targets(supervisor_page, answered_campaign, viewport):
    page = supervisor_page
    page.set_viewport_size(viewport)
    page.goto("/calls/")

    links = page.locator("table.calls td a")
    expect(links.first).to_be_visible()
    assert small_targets(links) == []


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_keys_are_a_table_of_tap_targets_and_a_chart_only_where_it_reads(
    supervisor_page, answered_campaign, viewport
):
    recorded, _ = answered_campaign
    page = supervisor_page
    page.set_viewport_size(viewport)
    page.goto(recorded.campaign.get_absolute_url())

    results = page.locator("#keypress-results")
    expect(results.locator("tbody tr").first).to_contain_text("1 (confirm)")
    chart = results.locator("svg.keypress-chart")
    if viewport is PHONE:
        expect(chart).to_be_hidden()  # its words would be about 6 px
    else:
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box and box["width"] >= 600  # drawn at 660 wide: its 13 px words stay ≥ 12 px
    assert small_targets(results.locator("td a")) == []
    assert serious_axe_violations(page) == []
    screenshot(page, f"phone-keys-{viewport['width']}")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_sandbox_numbers_check_boxes_and_radio_buttons_are_tap_targets(
    supervisor_page, bridge, viewport
):
    page = supervisor_page
    page.set_viewport_size(viewport)

    page.goto("/calls/new/")
    numbers = page.locator(".sandbox-numbers .fill-number")
    expect(numbers.first).to_be_visible()
    assert small_targets(numbers) == []

    page.goto("/notices/")
    boxes = page.locator("input[type=checkbox]")
    expect(boxes.first).to_be_visible()
    assert small_targets(boxes) == []

    page.goto("/preferences/")
    radios = page.locator("input[type=radio]")
    expect(radios).to_have_count(3)
    assert small_targets(radios) == []
    assert serious_axe_violations(page) == []


# Each word of the cell's text: how many lines its letters take on the page.
LINES_PER_WORD = """cell => {
  const text = cell.firstChild, lines = {};
  for (const match of text.textContent.matchAll(/\\S+/g)) {
    const range = document.createRange();
    range.setStart(text, match.index);
    range.setEnd(text, match.index + match[0].length);
    lines[match[0]] = new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
  }
  return lines;
}"""


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_catalogues_flow_names_keep_their_words_whole(supervisor_page, viewport):
    IvrFlow.objects.create(
        name="Delivery reminder",
        flow_id="31",
        template="Hi {Name}, your order {order_id} arrives on {date}. Press 1 to confirm it.",
    )
    page = supervisor_page
    page.set_viewport_size(viewport)
    page.goto("/catalogue/")

    name = page.locator("table.wide-table td", has_text="Delivery reminder")
    expect(name).to_be_visible()
    assert name.evaluate(LINES_PER_WORD) == {"Delivery": 1, "reminder": 1}
