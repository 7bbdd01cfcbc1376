import csv
import io
import re

from django.core.management import call_command
from playwright.sync_api import expect

from calls.models import AudioAsset, CallLog
from tests.browser.conftest import screenshot

CSV = """number,Name,otp
+91 98765 43211,Ravi,111111
12345,Bad,222222
+91 98765 40002,Mina,333333
+91 98765 43213,Anil,444444
"""


def seed() -> None:
    call_command("seed_demo", stdout=io.StringIO())


def test_a_campaign_reports_a_bad_row_then_runs_to_100_percent(
    supervisor_page, task_worker, tmp_path
):
    seed()
    page = supervisor_page
    upload = tmp_path / "reminders.csv"
    upload.write_text(CSV)
    page.click("nav >> text=Campaigns")
    page.click("text=New campaign")
    page.fill("#id_name", "Login reminders")
    page.select_option("#id_flow", label="Login OTP (flow 24)")
    page.set_input_files("#id_csv_file", str(upload))
    page.click("button:has-text('Upload and check rows')")

    # The worker reads the file; the page, which refreshes itself meanwhile, becomes the draft.
    expect(page.locator(".flash")).to_have_text(
        "reminders.csv: 3 rows ready to call, 1 set aside.", timeout=60_000
    )
    rows_set_aside = page.locator("section:has(h2:has-text('Rows set aside')) table")
    expect(rows_set_aside).to_contain_text("12345 is not a valid phone number")
    first_rows = page.locator("section:has(h2:has-text('First rows to call')) tbody tr")
    expect(first_rows.first.locator("td")).to_have_text(["+91 98765 43211", "Ravi", "******"])
    with page.expect_download() as download:
        page.click("text=Download the 1 row set aside")
    set_aside = list(csv.reader(download.value.path().read_text(encoding="utf-8-sig").splitlines()))
    assert set_aside == [
        ["number", "Name", "otp", "reason"],
        [
            "'12345",  # marked as text so a spreadsheet keeps its digits
            "Bad",
            "******",  # the otp is masked here too; it must be typed again
            "12345 is not a valid phone number with country code (for example +91 88671 35123).",
        ],
    ]
    screenshot(page, "campaign-draft")

    page.click("text=Start calling 3 numbers")
    expect(page.locator("h1")).to_have_text("Start calling 3 numbers?")
    page.click("button:has-text('Yes, start calling')")
    expect(page.locator("#progress progress")).to_have_attribute("value", "100", timeout=30_000)
    expect(page.locator("#progress")).to_contain_text("3 of 3 numbers settled")
    counts = page.locator("#progress .counts")
    expect(counts).to_contain_text("Answered 2")
    expect(counts).to_contain_text("Busy 1")
    screenshot(page, "campaign-finished")
    assert "111111" not in page.content()
    assert set(CallLog.objects.values_list("status", flat=True)) == {"answered", "busy"}


def upload_big_file(page, tmp_path, rows: int) -> None:
    """A new audio campaign of `rows` numbers: a worker needs a while to read them."""
    upload = tmp_path / "big.csv"
    upload.write_text("number\n" + "".join(f"9198{i:08d}\n" for i in range(rows)))
    page.goto("/campaigns/new/")
    page.fill("#id_name", "Big list")
    page.select_option("#id_audio", label="Payment reminder (sound)")
    page.set_input_files("#id_csv_file", str(upload))
    page.click("button:has-text('Upload and check rows')")


def test_a_big_upload_shows_its_progress_then_becomes_a_draft(
    supervisor_page, task_worker, tmp_path
):
    seed()
    page = supervisor_page
    upload_big_file(page, tmp_path, 30_000)

    progress = page.locator("#import-progress progress")
    expect(progress).to_be_visible()
    expect(page.locator("#import-progress")).to_contain_text("of big.csv")
    expect(page.get_by_text("Start calling")).to_have_count(0)  # not before every row is read
    expect(progress).not_to_have_attribute("value", "0", timeout=120_000)  # it moves by itself
    screenshot(page, "campaign-importing")

    expect(page.get_by_text("Start calling 30,000 numbers")).to_be_visible(timeout=600_000)
    expect(page.locator(".flash")).to_have_text("big.csv: 30,000 rows ready to call, 0 set aside.")
    expect(page.locator("#import-progress")).to_have_count(0)


def test_canceling_an_upload_leaves_no_campaign_and_says_so(supervisor_page, task_worker, tmp_path):
    seed()
    page = supervisor_page
    upload_big_file(page, tmp_path, 30_000)
    expect(page.locator("#import-progress progress")).not_to_have_attribute(
        "value", "0", timeout=120_000
    )

    page.click("button:has-text('Cancel the import')")

    expect(page.locator("h1")).to_have_text("Campaign not created", timeout=120_000)
    expect(page.locator(".flash.error")).to_have_text(
        "big.csv was not imported: sam canceled the import."
    )
    page.click("nav >> text=Campaigns")
    expect(page.get_by_text("Big list")).to_have_count(0)
    assert not CallLog.objects.exists()


def test_a_supervisor_reads_the_dashboard_exports_calls_and_uploads_a_sound(
    supervisor_page, task_worker, tmp_path
):
    seed()
    page = supervisor_page
    page.goto("/calls/new/")
    page.fill("#id_to", "+91 98765 40004")  # the sandbox rejects this one
    page.select_option("#id_audio", label="Payment reminder (sound)")
    page.click("button:has-text('Place call')")
    page.wait_for_url(re.compile(r"/calls/\d+/$"))
    # "Sending…" until the worker records the provider's answer; the page redraws itself.
    expect(page.locator(".outcome .status")).to_have_text("Refused", timeout=30_000)
    screenshot(page, "call-detail")

    page.click("nav >> text=Dashboard")
    expect(page.locator("#stat-placed")).to_have_text("1")
    expect(page.locator("svg.chart rect")).to_have_count(1)
    expect(page.get_by_text("provider answered HTTP 422")).to_be_visible()
    screenshot(page, "dashboard")

    page.goto("/calls/")
    with page.expect_download() as download:
        page.click("text=Export CSV")
    rows = list(csv.DictReader(download.value.path().read_text(encoding="utf-8-sig").splitlines()))
    # The number is marked as text (a leading apostrophe) so a spreadsheet keeps its digits.
    assert [(r["to"], r["status"]) for r in rows] == [("'919876540004", "rejected")]

    sound = tmp_path / "greeting.mp3"
    sound.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00fake mp3 frames")
    page.goto("/catalogue/")
    page.click("text=Upload a sound")
    page.fill("#id_name", "Diwali greeting")
    page.set_input_files("#id_audio_file", str(sound))
    page.click("button:has-text('Upload to the provider')")
    # "Uploading…" until a worker has the provider's answer; the page redraws itself.
    expect(page.get_by_text("Uploaded “Diwali greeting”")).to_be_visible(timeout=30_000)
    assert AudioAsset.objects.get(name="Diwali greeting").sound_id.startswith("sandbox-")
