import re

from playwright.sync_api import expect

from calls.models import CallLog
from tests.browser.conftest import screenshot


def test_a_supervisor_logs_in_and_browses_the_catalogue(supervisor_page, settings):
    from django.core.management import call_command

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = supervisor_page
    page.click("text=Catalogue")
    expect(page.locator("h1")).to_have_text("Catalogue")
    expect(page.get_by_text("Hello {Name}, your otp for login is {otp}")).to_be_visible()
    expect(page.locator(".tag.sensitive", has_text="otp").first).to_be_visible()
    expect(page.get_by_text("Sandbox mode")).to_be_visible()
    screenshot(page, "catalogue")


def test_an_agent_places_a_flow_call_and_watches_it_reach_its_outcome(supervisor_page, task_worker):
    from django.core.management import call_command

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = supervisor_page
    page.click("text=Place a call")
    page.fill("#id_to", "+91 98765 43210")
    page.select_option("#id_flow", label="Login OTP (flow 24)")
    page.locator("input[name='variables[Name]']").fill("Asha")
    page.locator("input[name='variables[otp]']").fill("482913")
    preview = page.locator("#preview blockquote")
    expect(preview).to_have_text("Hello Asha, your otp for login is ******")
    screenshot(page, "place-call")

    posts = []  # the form's submissions, not the live preview's POSTs (triggered by an input)

    def submitted(r) -> None:
        form = r.headers.get("hx-trigger", "call-form") == "call-form"
        if r.method == "POST" and "/calls/new/" in r.url and form:
            posts.append(r)

    page.on("request", submitted)
    page.locator("button[type=submit]", has_text="Place call").dblclick()
    page.wait_for_url(re.compile(r"/calls/\d+/$"))
    assert len(posts) == 1
    assert CallLog.objects.count() == 1
    expect(page.locator(".outcome .status")).to_have_text("Answered", timeout=30_000)

    page.click("nav >> text=Calls")
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("+91 98765 43210")
    expect(row.locator(".status")).to_have_text("Answered")
    assert "482913" not in page.content()
    screenshot(page, "call-list")


def test_a_flow_chosen_before_htmx_listens_still_shows_its_variables(supervisor_page):
    """A quick hand (or a slow network) picks the flow while htmx is still loading: its change
    event reaches no one, yet the variables come once htmx is there."""
    from django.core.management import call_command

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = supervisor_page
    held = []
    page.route("**/htmx*.js", lambda route: held.append(route))  # held until the flow is chosen
    page.goto("/calls/new/", wait_until="commit")
    page.wait_for_selector("#id_flow", state="attached")
    assert page.evaluate("() => typeof window.htmx") == "undefined"
    page.select_option("#id_flow", label="Login OTP (flow 24)")
    while not held:
        page.wait_for_timeout(50)
    held[0].continue_()
    expect(page.locator("input[name='variables[Name]']")).to_be_visible()
    expect(page.locator("#variables")).to_have_attribute("data-flow", re.compile(r"^\d+$"))


def test_the_call_log_updates_itself_while_a_call_is_in_flight(supervisor_page, task_worker):
    from django.core.management import call_command

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = supervisor_page
    page.goto("/calls/new/")
    page.fill("#id_to", "+91 98765 40002")  # the sandbox's busy number
    page.select_option("#id_audio", label="Payment reminder (sound)")
    page.click("button:has-text('Place call')")
    page.wait_for_url(re.compile(r"/calls/\d+/$"))
    page.goto("/calls/")
    status = page.locator("tbody tr").first.locator(".status")
    expect(status).to_have_text(re.compile("Sending…|Queued"))  # with the worker, or sent
    expect(status).to_have_text("Busy", timeout=30_000)
    screenshot(page, "call-list-busy")


def test_form_errors_show_next_to_their_fields_without_a_reload(supervisor_page):
    from django.core.management import call_command

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = supervisor_page
    page.goto("/calls/new/")
    page.fill("#id_to", "12345")
    page.click("button:has-text('Place call')")
    expect(page.locator(".field.invalid .errorlist")).to_contain_text(
        "12345 is not a valid phone number"
    )
    expect(page.locator("#call-form .errors")).to_contain_text(
        "Choose an IVR flow or an audio to play."
    )
    assert CallLog.objects.count() == 0
    screenshot(page, "place-call-errors")
