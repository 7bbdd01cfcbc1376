"""The worker side of a CSV import (calls/engine/imports.py, calls/models/imports.py): chunks
stored with their progress, a worker that dies resumed from its last chunk by another (never a row
twice, never "importing" for ever), a cancel or a failure mid-way undone to nothing."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from calls.engine import imports as engine
from calls.models import AuditEntry, CallLog, Campaign, CampaignImport, SetAsideRow
from calls.models.imports import LEASE, MAX_ATTEMPTS
from tests.helpers.campaigns import BAD_NUMBER, make_campaign, number, upload

ROWS = 10  # with chunks of 3 rows: four chunks, the last one short


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch):
    monkeypatch.setattr(engine, "ROWS_A_CHUNK", 3)


def csv_of(rows: int, bad_every: int = 0) -> bytes:
    """number,Name,otp rows to number(0), number(1)...; every `bad_every`-th number invalid."""
    lines = [
        f"{'12345' if bad_every and i % bad_every == bad_every - 1 else number(i)},N{i},{i}\n"
        for i in range(rows)
    ]
    return ("number,Name,otp\n" + "".join(lines)).encode()


def arrive(campaign: Campaign, content: bytes) -> CampaignImport:
    """An upload as the request stores it; no row read yet."""
    job = CampaignImport.receive(campaign, "numbers.csv", content, None)
    assert job is not None
    return job


def new_campaign(bridge, otp_flow) -> Campaign:
    """A campaign created with its upload, as the new-campaign page makes it."""
    return make_campaign(bridge, flow=otp_flow, status=Campaign.Status.IMPORTING)


def later(seconds: float = LEASE.total_seconds() + 1):
    return time_machine.travel(timezone.now() + timedelta(seconds=seconds), tick=False)


class WorkerDies(Exception):
    """The worker's process stops here (its chunk's transaction is never committed)."""


class Killer:
    """Stops the worker while it stores its `on_chunk`-th chunk (and any after), as a SIGKILL
    would stop it: that chunk's transaction is never committed. None: the worker lives."""

    def __init__(self, monkeypatch) -> None:
        self.on_chunk: int | None = None
        self.stored = 0
        store = engine.store

        def store_or_die(*args, **kwargs) -> None:
            self.stored += 1
            if self.on_chunk is not None and self.stored >= self.on_chunk:
                raise WorkerDies
            store(*args, **kwargs)

        monkeypatch.setattr(engine, "store", store_or_die)


@pytest.fixture
def killer(monkeypatch) -> Killer:
    return Killer(monkeypatch)


def test_rows_are_stored_a_chunk_at_a_time_with_the_progress_to_resume_from(
    killer, bridge, otp_flow
):
    campaign = new_campaign(bridge, otp_flow)
    content = csv_of(ROWS, bad_every=4)
    job = arrive(campaign, content)
    killer.on_chunk = 3

    with pytest.raises(WorkerDies):
        engine.work_on(job.pk)

    job.refresh_from_db()
    assert (job.state, job.accepted, job.set_aside, job.line) == ("reading", 5, 1, 7)
    assert job.position == len("".join(content.decode().splitlines(True)[:7]))
    assert 0 < job.percent < 100
    assert campaign.calls.count() == 5 and campaign.set_aside_rows.count() == 1
    campaign.refresh_from_db()
    assert campaign.status == "importing"  # not a draft: nothing may start it


def test_a_dead_worker_s_import_is_resumed_by_another_from_its_last_chunk(killer, bridge, otp_flow):
    campaign = new_campaign(bridge, otp_flow)
    job = arrive(campaign, csv_of(ROWS, bad_every=4))
    killer.on_chunk = 3
    with pytest.raises(WorkerDies):
        engine.work_on(job.pk)
    killer.on_chunk = None

    assert engine.resume_stalled_imports() == 0  # its lease still runs: the worker may be alive
    with later():
        assert engine.resume_stalled_imports() == 1
        assert engine.resume_stalled_imports() == 0  # queued once per stall
        queued = DBTaskResult.objects.filter(task_path=engine.run_import.module_path)
        assert [task.args_kwargs["args"] for task in queued] == [[job.pk]]
        assert engine.work_on(job.pk) == "done"

    job.refresh_from_db()
    campaign.refresh_from_db()
    assert (job.accepted, job.set_aside, job.attempts, job.content) == (8, 2, 2, b"")
    assert sorted(campaign.calls.values_list("to", flat=True)) == sorted(
        number(i) for i in range(ROWS) if i % 4 != 3
    )
    assert list(campaign.set_aside_rows.values_list("line", "reason")) == [
        (5, BAD_NUMBER),
        (9, BAD_NUMBER),
    ]
    assert (campaign.status, campaign.rows_set_aside) == ("draft", 2)


def test_a_live_worker_s_import_is_not_taken_by_another(bridge, otp_flow):
    campaign = new_campaign(bridge, otp_flow)
    job = arrive(campaign, csv_of(ROWS))
    assert CampaignImport.claim(job.pk, holder=engine.uuid.uuid4(), now=timezone.now())

    assert engine.work_on(job.pk) == "held by another worker, or ended"
    assert not campaign.calls.exists()


def test_a_worker_whose_lease_ran_out_stores_no_chunk_after_another_took_over(bridge, otp_flow):
    campaign = new_campaign(bridge, otp_flow)
    job = arrive(campaign, csv_of(ROWS))
    slow, quick = engine.uuid.uuid4(), engine.uuid.uuid4()
    assert CampaignImport.claim(job.pk, slow, timezone.now())
    with later():
        assert CampaignImport.claim(job.pk, quick, timezone.now())

    progress = {"length": 1, "position": 10, "line": 2, "accepted": 1, "set_aside": 0}
    assert not job.advance(slow, 0, **progress)
    assert job.advance(quick, 0, **progress)
    assert not job.advance(quick, 0, **progress)  # from the same mark twice: no
    assert not job.complete(slow, [])


def test_a_second_task_for_an_import_that_ended_does_nothing(campaign):
    job = upload(campaign, "number,Name,otp\n918867135123,Asha,1\n")

    assert engine.work_on(job.pk) == "held by another worker, or ended"
    assert campaign.calls.count() == 1
    assert AuditEntry.objects.filter(action="uploaded").count() == 1


def test_an_upload_whose_task_never_ran_is_queued_again(bridge, otp_flow):
    job = arrive(new_campaign(bridge, otp_flow), csv_of(2))

    assert engine.resume_stalled_imports() == 0
    with later():
        assert engine.resume_stalled_imports() == 1
        assert engine.work_on(job.pk) == "done"


def cancel_before_chunk(monkeypatch, job: CampaignImport, chunk: int, user) -> None:
    """The person cancels while the worker reads, just before its `chunk`-th chunk is stored."""
    sort = engine.RowCheck.sort
    seen = {"n": 0}

    def sort_then_cancel(self, rows):
        seen["n"] += 1
        if seen["n"] == chunk:
            assert job.cancel(user)
        return sort(self, rows)

    monkeypatch.setattr(engine.RowCheck, "sort", sort_then_cancel)


def test_a_new_campaign_canceled_mid_import_leaves_nothing(
    monkeypatch, bridge, otp_flow, supervisor
):
    campaign = new_campaign(bridge, otp_flow)
    job = arrive(campaign, csv_of(ROWS, bad_every=2))
    cancel_before_chunk(monkeypatch, job, 3, supervisor)

    assert engine.work_on(job.pk) == "canceled"

    job.refresh_from_db()
    assert (job.error, job.content, job.lease_until) == (
        "supervisor canceled the import.",
        b"",
        None,
    )
    assert not Campaign.objects.exists()
    assert not CallLog.objects.exists() and not SetAsideRow.objects.exists()
    assert not job.cancel(supervisor)  # ended: nothing left to cancel


def test_a_draft_canceled_mid_upload_is_as_it_was_before(monkeypatch, campaign, supervisor):
    upload(campaign, "number,Name,otp\n918867135100,Asha,1\n12345,Ravi,2\n")
    before = (list(campaign.calls.values_list("id", "to")), list(campaign.set_aside_rows.all()))
    job = arrive(campaign, csv_of(ROWS, bad_every=2))
    cancel_before_chunk(monkeypatch, job, 2, supervisor)

    assert engine.work_on(job.pk) == "canceled"

    campaign.refresh_from_db()
    after = (list(campaign.calls.values_list("id", "to")), list(campaign.set_aside_rows.all()))
    assert after == before
    assert (campaign.status, campaign.rows_set_aside) == ("draft", 1)


def test_an_import_canceled_before_a_worker_took_it_leaves_nothing(bridge, otp_flow, supervisor):
    job = arrive(new_campaign(bridge, otp_flow), csv_of(ROWS))
    assert job.cancel(supervisor)

    assert engine.work_on(job.pk) == "canceled"
    assert not Campaign.objects.exists() and not CallLog.objects.exists()


def test_a_new_campaign_whose_file_fails_mid_way_is_removed_saying_why(bridge, otp_flow):
    campaign = new_campaign(bridge, otp_flow)
    content = csv_of(ROWS) + b"918867135123,Asha\x00,1\n"

    job = upload(campaign, content)

    assert (job.state, job.campaign_id) == ("failed", campaign.pk)
    assert job.error.startswith(f"Line {ROWS + 2} contains a NUL character")
    assert not Campaign.objects.exists()
    assert not CallLog.objects.exists() and not SetAsideRow.objects.exists()


def test_an_import_that_keeps_stopping_fails_instead_of_stopping_workers_for_ever(
    killer, bridge, otp_flow
):
    job = arrive(new_campaign(bridge, otp_flow), csv_of(ROWS))
    killer.on_chunk = 1  # whichever worker reads it dies (say, the file makes it run out of memory)
    with pytest.raises(WorkerDies):
        engine.work_on(job.pk)
    for attempt in range(1, MAX_ATTEMPTS):
        with later(attempt * (LEASE.total_seconds() + 1)):
            assert engine.resume_stalled_imports() == 1
            with pytest.raises(WorkerDies):
                engine.work_on(job.pk)

    with later(MAX_ATTEMPTS * (LEASE.total_seconds() + 1)):
        assert engine.resume_stalled_imports() == 1
        assert engine.work_on(job.pk) == "failed"

    job.refresh_from_db()
    assert job.attempts == MAX_ATTEMPTS
    assert job.error.startswith(f"The import stopped {MAX_ATTEMPTS} times before the end")
    assert not Campaign.objects.exists() and not CallLog.objects.exists()


def test_an_import_whose_campaign_was_deleted_meanwhile_ends_instead_of_failing_for_ever(
    bridge, otp_flow
):
    campaign = make_campaign(bridge, flow=otp_flow)
    job = arrive(campaign, csv_of(ROWS))
    Campaign.objects.filter(pk=campaign.pk).delete()  # in the admin, say

    assert engine.work_on(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error == "Its campaign was deleted while the file was read."
