"""An OTP typed into the call form, under gunicorn as production runs it (access log on): it
reaches the provider, and nowhere else — not in a URL, a log line or the database."""

import re
import time

from django.db import connection
from playwright.sync_api import expect

from calls.models import CallLog
from tests.browser.conftest import close
from tests.conftest import _user, logged_in

OTP = "583920"


def database_text() -> str:
    """Every row of every table of ours, as text."""
    with connection.cursor() as cursor:
        tables = [t for t in connection.introspection.table_names(cursor) if t.startswith("calls_")]
        dump = []
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            dump.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(dump)


def test_a_typed_otp_never_reaches_a_url_a_log_or_the_database(
    browser, gunicorn, task_worker, django_user_model, bridge, otp_flow
):
    session = logged_in(_user(django_user_model, "agent", "Agents")).cookies["sessionid"].value
    context = browser.new_context(base_url=gunicorn.url)
    context.add_cookies([{"name": "sessionid", "value": session, "url": gunicorn.url}])
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))

    page.goto("/calls/new/")
    page.fill("#id_to", "+91 98765 43210")
    page.select_option("#id_flow", label="Login OTP (flow 24)")
    page.locator("input[name='variables[Name]']").fill("Asha")
    page.locator("input[name='variables[otp]']").type(OTP, delay=30)
    expect(page.locator("#preview blockquote")).to_have_text(
        "Hello Asha, your otp for login is ******"
    )
    page.locator("button[type=submit]", has_text="Place call").click()
    page.wait_for_url(re.compile(r"/calls/\d+/$"))
    close(context)

    call = CallLog.objects.get()
    assert call.variables == {"Name": "Asha", "otp": "******"}
    assert OTP not in database_text()  # sealed while it waits for the worker
    deadline = time.monotonic() + 60
    while call.status == "pending":  # the worker sends it
        assert time.monotonic() < deadline, "the worker never sent the call"
        time.sleep(0.2)
        call.refresh_from_db()
    assert call.status == "queued"  # the sandbox took it: the OTP was sent
    assert any("/calls/new/" in url for url in urls)
    assert not [url for url in urls if OTP in url]
    log = gunicorn.log.read_text()
    assert '"POST /calls/new/ HTTP/1.1" 200' in log  # the access log is on, and saw the preview
    assert OTP not in log
    assert OTP not in database_text()
