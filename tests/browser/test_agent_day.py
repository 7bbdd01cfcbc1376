"""An agent's day without surprises: the call log shows new calls by itself and says which
filter it could not read, a sandbox number fills the form and shows its recent calls, and the
OTP can be seen while it is typed."""

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from calls.models import AudioAsset, Bridge, CallLog
from tests.browser.conftest import screenshot
from tests.clock import pinned_now

DESK, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}
VIEWPORTS = pytest.mark.parametrize("viewport", [DESK, PHONE], ids=["desk", "phone"])


def seed() -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


def dialled(to: str, status: str = "answered") -> CallLog:
    """A call someone else placed a moment ago."""
    return CallLog.objects.create(
        bridge=Bridge.objects.first(),
        audio=AudioAsset.objects.first(),
        to=to,
        status=status,
        submitted_at=pinned_now(),
    )


@VIEWPORTS
def test_a_call_placed_elsewhere_appears_in_the_call_log_without_a_reload(
    supervisor_page, viewport
):
    seed()
    page = supervisor_page
    page.set_viewport_size(viewport)
    dialled("919876540010")
    page.goto("/calls/")
    expect(page.locator("tbody tr")).to_have_count(1)
    loaded = page.evaluate("performance.timeOrigin")

    other = dialled("919876540011", status="busy")

    row = page.locator(f"#call-{other.pk}")
    expect(row).to_be_visible(timeout=30_000)
    expect(page.locator("tbody tr").first).to_have_id(f"call-{other.pk}")
    expect(row.locator(".status")).to_have_text("Busy")
    assert page.evaluate("performance.timeOrigin") == loaded  # the same page, not reloaded
    screenshot(page, f"call-log-new-call-{viewport['width']}")


def test_a_mistyped_day_is_named_as_not_applied_and_nothing_is_exported(supervisor_page):
    seed()
    dialled("919876540010")
    page = supervisor_page
    page.goto("/calls/")
    loaded = page.evaluate("performance.timeOrigin")

    page.get_by_label("From").fill("32 Dec 2026")
    page.get_by_role("button", name="Filter").click()

    notice = page.locator("#results .flash.error")
    expect(notice).to_contain_text("From “32 Dec 2026” is not applied: Enter a day like 27 Nov")
    expect(notice).to_contain_text("No filter is applied: every call is listed.")
    expect(page.locator("#announcer")).to_contain_text("From “32 Dec 2026” is not applied")
    assert page.evaluate("performance.timeOrigin") == loaded  # swapped in, not reloaded
    # The link follows the filters the log shows; it exports nothing and says why.
    page.get_by_role("link", name="Export CSV").click()
    expect(page.get_by_text("Nothing was exported: a filter could not be read.")).to_be_visible()
    expect(page.get_by_label("From")).to_have_value("32 Dec 2026")


def test_a_sandbox_number_fills_to_and_the_form_shows_its_recent_calls(supervisor_page):
    seed()
    earlier = dialled("919876540002", status="busy")
    page = supervisor_page
    page.set_viewport_size(DESK)
    page.goto("/calls/new/")
    posted = []
    page.on("request", lambda r: posted.append(r.post_data) if r.method == "POST" else None)

    page.get_by_role("button", name="+919876540002").click()

    expect(page.locator("#id_to")).to_have_value("+919876540002")
    recent = page.locator("#recent")
    expect(recent.locator(f"a[href='/calls/{earlier.pk}/']")).to_be_visible()
    expect(recent.locator(".status")).to_have_text("Busy")
    assert posted and all(body.startswith("to=") and "&" not in body for body in posted)
    screenshot(page, "place-call-recent-1366")
    page.set_viewport_size(PHONE)
    screenshot(page, "place-call-recent-390")


@VIEWPORTS
def test_the_otp_can_be_seen_while_typed_and_is_masked_again_when_sent(supervisor_page, viewport):
    seed()
    page = supervisor_page
    page.set_viewport_size(viewport)
    page.goto("/calls/new/")
    page.fill("#id_to", "+91 98765 43210")
    page.select_option("#id_flow", label="Login OTP (flow 24)")
    page.locator("input[name='variables[Name]']").fill("Asha")
    otp = page.locator("input[name='variables[otp]']")
    otp.fill("482913")
    eye = page.get_by_role("button", name="Show otp")

    eye.click()
    expect(otp).to_have_attribute("type", "text")
    expect(page.get_by_role("button", name="Hide otp")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#preview blockquote")).to_have_text(
        "Hello Asha, your otp for login is ******"
    )
    screenshot(page, f"place-call-otp-shown-{viewport['width']}")
    page.get_by_role("button", name="Hide otp").click()
    expect(otp).to_have_attribute("type", "password")

    page.get_by_role("button", name="Show otp").click()
    page.click("button:has-text('Place call')")
    page.wait_for_url(re.compile(r"/calls/\d+/$"))
    assert "482913" not in page.content()
    assert CallLog.objects.get().variables["otp"] == "******"


def test_back_shows_the_filters_the_log_shows_and_keeps_no_copy_of_it_in_the_browser(
    supervisor_page,
):
    seed()
    dialled("919876540010")
    dialled("919876540011", status="busy")
    page = supervisor_page
    page.goto("/calls/")
    bridge = Bridge.objects.first()

    page.get_by_label("Bridge").select_option(str(bridge.pk))
    expect(page).to_have_url(re.compile(rf"bridge={bridge.pk}"))
    page.get_by_label("Status").select_option("busy")
    expect(page).to_have_url(re.compile("status=busy"))
    expect(page.locator("tbody tr")).to_have_count(1)
    page.go_back()

    # The log as it was one step back, and its form saying so: a filter changed next keeps
    # the bridge instead of dropping it.
    expect(page).not_to_have_url(re.compile("status=busy"))
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.get_by_label("Bridge")).to_have_value(str(bridge.pk))
    expect(page.get_by_label("Status")).to_have_value("")
    page.get_by_label("Status").select_option("answered")
    expect(page).to_have_url(re.compile("status=answered"))
    expect(page).to_have_url(re.compile(rf"bridge={bridge.pk}&"))
    expect(page.locator("tbody tr")).to_have_count(1)
    # The customers' numbers on the log are not stored in the browser for Back.
    stored = page.evaluate("JSON.stringify(window.localStorage)")
    assert "98765" not in stored and "htmx-history-cache" not in stored


def test_enter_in_the_search_box_asks_once(supervisor_page):
    seed()
    dialled("919876540010")
    page = supervisor_page
    page.goto("/calls/")
    asked: list[str] = []
    page.on("request", lambda request: "/calls/?" in request.url and asked.append(request.url))

    page.get_by_label("Search").fill("0010")
    page.get_by_label("Search").press("Enter")

    expect(page).to_have_url(re.compile("q=0010"))
    expect(page.locator("tbody tr")).to_have_count(1)
    page.wait_for_timeout(500)  # a second request would have left by now
    assert len(asked) == 1, asked
