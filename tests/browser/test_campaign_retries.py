"""A scheduled campaign with a retry policy, run by a real worker in the sandbox: a number that
never answers and a busy one are tried three times each, an answered one once; the call pages
say "Attempt n of 3" and link the attempts; the campaign counts numbers reached. The retry
interval (a minute at least) is shortened by moving the retries' not-before, and the worker's
queued dispatch, to now: the test's clock shift."""

import time
from datetime import timedelta

from django.db.models import Q
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from playwright.sync_api import expect

from calls.models import AudioAsset, Bridge, CallLog, Campaign
from calls.vocabulary import IN_FLIGHT
from tests.browser.conftest import screenshot
from tests.clock import pinned_now
from tests.system.conftest import start_db_worker, start_engine

NO_ANSWER, BUSY, ANSWERED = "919876540003", "919876540002", "919876541231"
CSV = "number\n+91 98765 40003\n+91 98765 40002\n+91 98765 41231\n"


def shorten_retry_intervals() -> None:
    """The clock shift: retries due now, and the dispatcher waiting for them woken now."""
    now = pinned_now()
    CallLog.objects.filter(status="pending", attempt_number__gt=1, not_before__gt=now).update(
        not_before=now
    )
    DBTaskResult.objects.filter(
        Q(task_path__endswith="dispatch_campaign"),
        status=TaskResultStatus.READY,
        run_after__gt=now,
    ).update(run_after=now)


def test_a_scheduled_campaign_retries_no_answer_and_busy_three_times(
    supervisor_page, transactional_db, tmp_path
):
    Bridge.objects.create(number="918068287602", label="Bengaluru")
    AudioAsset.objects.create(name="Reminder", sound_id="39888925-718e-43bb-a8b1-d4a3c0de0001")
    env = {"OBD_SANDBOX_DELAY_SECONDS": "1", "OBD_SCHEDULE_EVERY_SECONDS": "1"}
    workers = [start_db_worker(**env), start_engine(**env)]
    try:
        page = supervisor_page
        upload = tmp_path / "numbers.csv"
        upload.write_text(CSV)
        page.goto("/campaigns/new/")
        page.fill("#id_name", "Reminders with retries")
        page.select_option("#id_audio", label="Reminder")
        page.set_input_files("#id_csv_file", str(upload))
        page.click("summary:has-text('Retries and schedule')")
        page.fill("#id_max_attempts", "3")
        page.check("input[name=retry_on][value=no_answer]")
        page.check("input[name=retry_on][value=busy]")
        page.fill("#id_retry_minutes", "1")
        later = timezone.localtime(pinned_now()) + timedelta(minutes=5)
        page.fill("#id_start_at", later.strftime("%Y-%m-%dT%H:%M"))
        page.click("button:has-text('Upload and check rows')")
        # The worker reads the file in the background; the page turns into the draft.
        expect(page.locator(".flash")).to_have_text(
            "numbers.csv: 3 rows ready to call, 0 set aside.", timeout=60_000
        )

        page.click("text=Start calling 3 numbers")
        page.click("button:has-text('Yes, start calling')")
        progress = page.locator("#progress")
        expect(progress).to_contain_text("Scheduled for")
        expect(progress).to_contain_text("Up to 3 attempts on no answer, busy, 1 min apart")
        for width in (1366, 390):  # the README's docs/campaign.png and docs/phone-campaign.png
            page.set_viewport_size({"width": width, "height": 900})
            screenshot(page, f"readme-campaign-{width}")
        page.set_viewport_size({"width": 1280, "height": 900})
        campaign = Campaign.objects.get()
        assert campaign.status == "scheduled"
        # Its start a few seconds ahead now, rather than minutes.
        Campaign.objects.filter(pk=campaign.pk).update(start_at=pinned_now() + timedelta(seconds=2))

        deadline = time.monotonic() + 90
        # Finished once the last attempts are sent; their outcomes follow.
        while (
            Campaign.objects.get().status != "finished"
            or campaign.calls.filter(status__in=IN_FLIGHT).exists()
        ):
            assert time.monotonic() < deadline, list(
                campaign.calls.values_list("to", "attempt_number", "status")
            )
            shorten_retry_intervals()
            time.sleep(0.3)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=10)

    def tried(to: str) -> list[tuple[int, str]]:
        calls = campaign.calls.filter(to=to).order_by("attempt_number")
        return list(calls.values_list("attempt_number", "status"))

    assert tried(NO_ANSWER) == [(1, "no_answer"), (2, "no_answer"), (3, "no_answer")]
    assert tried(BUSY) == [(1, "busy"), (2, "busy"), (3, "busy")]
    assert tried(ANSWERED) == [(1, "answered")]

    page.reload()
    expect(progress).to_contain_text("100% — 3 of 3 numbers settled, 1 reached.")
    expect(progress).to_contain_text("Retries, counted apart: 4 made, 4 settled.")
    screenshot(page, "campaign-retries-finished")

    last = campaign.calls.get(to=NO_ANSWER, attempt_number=3)
    page.goto(last.get_absolute_url())
    attempts = page.locator(".outcome .attempts")
    expect(attempts).to_contain_text("Attempt 3 of 3 at this number")
    expect(page.locator(".outcome .status")).to_have_text("No answer")
    first = campaign.calls.get(to=NO_ANSWER, attempt_number=1)
    attempts.locator(f"a[href='{first.get_absolute_url()}']").click()
    expect(page.locator(".outcome .attempts")).to_contain_text("Attempt 1 of 3 at this number")
    expect(page.locator(".outcome .attempts a[aria-current=page]")).to_have_text(f"#{first.pk}")
    screenshot(page, "call-attempt-1-of-3")

    page.goto(f"/calls/?campaign={campaign.pk}")
    row = page.locator(f"#call-{last.pk}")
    expect(row.locator(".attempt")).to_have_text("attempt 3 of 3")
