"""In Chromium, on the sandbox with a real engine process: the engine looks up the keys pressed
on a campaign's answered calls, the campaign page shows them as counts, shares and a chart, and
a call's recording plays (the sandbox's clip, through the portal)."""

import time

from playwright.sync_api import expect

from calls.engine.clock import ensure_schedule
from calls.models import CallLog, DoNotCall, IvrFlow, PeriodicJob
from tests.browser.conftest import SCREENSHOTS, screenshot
from tests.clock import pinned_now
from tests.helpers.campaigns import make_campaign
from tests.helpers.keypresses import answered

# The sandbox's customer presses the last digit of their number.
NUMBERS = ["919876541231", "919876541241", "919876541252", "919876541269", "919876541270"]


def test_a_campaigns_keys_are_looked_up_charted_and_a_recording_plays(
    supervisor_page, task_worker, bridge
):
    flow = IvrFlow.objects.create(
        flow_id="31",
        name="Delivery check",
        template="Hello {Name}, press 1 to confirm, 2 to reschedule, 9 to stop these calls",
        choices={"1": "confirm", "2": "reschedule", "9": "stop calling me"},
        stop_key="9",
    )
    campaign = make_campaign(bridge, flow=flow, status="finished")
    calls = [
        answered(
            bridge,
            flow,
            to=number,
            campaign=campaign,
            provider_id=f"5b6c7d8e-0000-4000-8000-00000000000{n}",
            recording_url=f"https://sandbox.invalid/{n}.wav",
            submitted_at=pinned_now(),
        )
        for n, number in enumerate(NUMBERS)
    ]
    ensure_schedule()  # the engine's look-up runs now, not a minute from now
    PeriodicJob.objects.filter(name="keypresses").update(next_run_at=pinned_now())
    page = supervisor_page

    page.goto(campaign.get_absolute_url())
    for _ in range(30):  # the engine answers within seconds
        if not CallLog.objects.filter(campaign=campaign, keypresses_at=None).exists():
            break
        page.wait_for_timeout(500)
    page.reload()

    results = page.locator("#keypress-results")
    rows = results.locator("tbody tr")
    expect(rows.nth(0)).to_contain_text("1 (confirm)")
    expect(rows.nth(0)).to_contain_text("2")
    expect(rows.nth(0)).to_contain_text("40.0%")
    expect(rows.nth(2)).to_contain_text("9 (stop calling me)")
    expect(rows.nth(2)).to_contain_text("put on the do-not-call list")
    expect(rows.nth(4)).to_contain_text("0")  # a key the flow does not name
    expect(results.locator("svg.keypress-chart rect")).to_have_count(5)
    assert DoNotCall.objects.filter(number="919876541269", source="keypress").exists()
    screenshot(page, "keypress-results-1280")
    results.screenshot(path=SCREENSHOTS / "keypress-results.png")  # README's docs/keypresses.png

    rows.nth(0).locator("a").click()  # the call log, filtered by that key
    expect(page.locator("tbody tr")).to_have_count(2)

    page.goto(calls[0].get_absolute_url())
    expect(page.locator(".keypresses")).to_have_text("1 (confirm)")
    audio = page.locator("audio.recording")
    # Polled from here: the page's CSP forbids the eval that wait_for_function uses.
    until(lambda: audio.evaluate("a => a.readyState") >= 1)  # HAVE_METADATA: the clip loaded
    assert 0.9 <= audio.evaluate("a => a.duration") <= 1.1
    audio.evaluate("a => { a.muted = true; return a.play(); }")
    until(lambda: audio.evaluate("a => a.currentTime") > 0.2)


def until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
