"""A campaign's CSV uploaded through the page and read by real `db_worker` processes: a
600,000-row file becomes a draft with every row counted once, and a worker SIGKILLed mid-import
is taken over by another, which resumes from the last stored chunk without storing a row twice."""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from django.db.models import Count

from calls.models import Campaign, CampaignImport
from tests.helpers.portal import campaign_form, logged_in
from tests.system.conftest import start_db_worker, start_engine

# Waits are generous (a loaded two-core machine reads about 2,000 rows a second); the tests
# fail only if the import never ends, never on how long it took.
IMPORT_WAIT = 20 * 60


def numbers_csv(rows: int, valid_every: int) -> bytes:
    """An audio campaign's file: one number a row, every `valid_every`-th valid and distinct,
    the others not numbers at all (set aside, as in a file of junk)."""
    lines = (b"9198%08d\n" % i if i % valid_every == 0 else b"1\n" for i in range(rows))
    return b"number\n" + b"".join(lines)


@pytest.fixture
def workers() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*, engine: bool = False, **env: str) -> subprocess.Popen[bytes]:
        """A worker (or, with `engine`, the engine, whose sweeper finds an import whose worker
        died)."""
        starting = start_engine if engine else start_db_worker
        started.append(starting(LOG_LEVEL="WARNING", **env))
        return started[-1]

    yield start
    for worker in started:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=30)


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def upload(client, bridge, sound, content: bytes) -> tuple[Campaign, CampaignImport]:
    """The new-campaign page posted: it answers with the campaign importing, nothing read."""
    form = campaign_form(bridge, None, content, audio=sound.pk, name="Big list")
    response = client.post("/campaigns/new/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get()
    job = CampaignImport.objects.get()
    assert (campaign.status, job.state, job.accepted + job.set_aside) == ("importing", "waiting", 0)
    return campaign, job


def is_draft(campaign: Campaign) -> bool:
    return Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.DRAFT).exists()


def assert_every_row_once(campaign: Campaign, job: CampaignImport, valid: int, rows: int) -> None:
    job.refresh_from_db()
    campaign.refresh_from_db()
    assert (job.state, job.accepted, job.set_aside, job.content) == (
        "done",
        valid,
        rows - valid,
        b"",
    )
    assert campaign.calls.count() == valid
    doubled = campaign.calls.values("to").annotate(n=Count("id")).filter(n__gt=1)
    assert not doubled.exists()
    assert campaign.set_aside_rows.count() == campaign.rows_set_aside == rows - valid
    assert campaign.set_aside_rows.order_by("line").first().line == 3  # the file's second row


@pytest.mark.django_db(transaction=True)
def test_a_worker_reads_a_600000_row_csv_uploaded_through_the_page(
    workers, bridge, sound, supervisor
):
    rows, valid_every = 600_000, 10
    campaign, job = upload(logged_in(supervisor), bridge, sound, numbers_csv(rows, valid_every))

    workers()
    wait_until(lambda: is_draft(campaign), IMPORT_WAIT, "the 600,000 rows to be read")

    assert_every_row_once(campaign, job, rows // valid_every, rows)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_import_is_taken_over_and_no_row_is_stored_twice(
    workers, bridge, sound, supervisor
):
    rows, valid_every = 100_000, 2
    campaign, job = upload(logged_in(supervisor), bridge, sound, numbers_csv(rows, valid_every))
    sweeping = {"OBD_SWEEP_EVERY_SECONDS": "1"}
    workers(engine=True, **sweeping)

    first = workers(**sweeping)
    wait_until(
        lambda: CampaignImport.objects.get(pk=job.pk).accepted > 0, IMPORT_WAIT, "a first chunk"
    )
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    job.refresh_from_db()
    assert job.state == "reading" and 0 < job.position < job.length  # stopped mid-file
    killed_at = time.monotonic()

    workers(**sweeping)
    wait_until(
        lambda: CampaignImport.objects.get(pk=job.pk).attempts == 2, IMPORT_WAIT, "a take-over"
    )
    taken_over_in = time.monotonic() - killed_at
    wait_until(lambda: is_draft(campaign), IMPORT_WAIT, "the import to end")

    assert_every_row_once(campaign, job, rows // valid_every, rows)
    print(f"killed mid-import: taken over by another worker {taken_over_in:.1f} s later")
