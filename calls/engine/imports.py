"""The worker side of a campaign's CSV import: the upload request only stores the file
(`queue_import`); a worker reads it a chunk at a time under the import's lease, committing each
chunk's rows with its progress and the mark to resume from; then completes it (the campaign becomes
a draft) or, when the file cannot be used or the person cancels, removes every row it stored.

A worker killed mid-import loses at most its uncommitted chunk: the sweeper finds the lease run
out and queues the import again, and the next worker resumes from the last committed mark. A
chunk is stored only by the worker whose lease and mark it was read under (a compare-and-set in
its transaction), so no row is stored twice."""

import logging
import uuid
from functools import partial

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.tasks import task
from django.utils import timezone

from calls.imports import Mark, RowCheck, RowReader, UnreadableFile, decode, read_layout, store
from calls.models import Campaign
from calls.models.imports import CampaignImport

logger = logging.getLogger(__name__)

# Rows a transaction: progress is written (and a killed worker loses at most) one chunk. Large
# enough that writing is done in bulk (COPY on PostgreSQL), small enough that SQLite's write lock
# is held a fraction of a second at a time, so webhooks and sends go on during an import.
ROWS_A_CHUNK = 5000


def queue_import(
    campaign: Campaign, upload: UploadedFile[bytes], user: User | None
) -> CampaignImport | None:
    """Store the upload (inside the caller's transaction) and have a worker read it once that
    commits. None when the campaign is no longer a draft."""
    job = CampaignImport.receive(campaign, upload.name or "upload.csv", upload.read(), user)
    if job is not None:
        transaction.on_commit(partial(run_import.enqueue, job.pk))
    return job


@task(queue_name="campaigns")
def run_import(import_id: int) -> str:
    return work_on(import_id)


def work_on(import_id: int) -> str:
    """Take the import unless a live worker holds it, read it to its end (or undo it), and say
    how it stands."""
    holder = uuid.uuid4()
    job = CampaignImport.claim(import_id, holder, timezone.now())
    if job is None:
        return "held by another worker, or ended"
    if job.state == CampaignImport.State.READING:
        _read(job, holder)
        job.refresh_from_db(fields=["state", "holder"])
    if job.state == CampaignImport.State.UNDOING and job.holder == holder:
        while job.undo_some(holder, ROWS_A_CHUNK):
            pass
        job.end_undone(holder)
        job.refresh_from_db(fields=["state"])
    logger.info("import=%s campaign=%s %s", job.pk, job.campaign_id, job.state)
    return job.state


def _read(job: CampaignImport, holder: uuid.UUID) -> None:
    """Read and store chunks from the last committed mark until the end of the file, a row
    that cannot be read (the import is given up, saying why), or the import is no longer ours
    (canceled, or taken by another worker after our lease ran out)."""
    playing = Campaign.objects.select_related("bridge", "flow", "audio")
    if not (campaign := playing.filter(pk=job.campaign_id).first()):  # deleted (in the admin)
        job.give_up(holder, "Its campaign was deleted while the file was read.")
        return
    try:
        text = decode(bytes(job.content))
        layout = read_layout(campaign, text)
    except UnreadableFile as exc:
        job.give_up(holder, str(exc))
        return
    check = RowCheck(campaign, layout, job.uploaded_by)
    stored = job.position
    rows = RowReader(text, layout, Mark(job.position, job.line) if stored else layout.rows_from)
    found = job.accepted + job.set_aside
    while True:
        try:
            chunk, after, at_end = rows.take(ROWS_A_CHUNK)
            calls, set_aside = check.sort(chunk)
            found += len(calls) + len(set_aside)
            if at_end and not found:
                raise UnreadableFile("The file has a header but no rows: add one row per number.")
        except UnreadableFile as exc:
            job.give_up(holder, str(exc))
            return
        with transaction.atomic():
            if not job.advance(
                holder,
                stored,
                length=len(text),
                position=after.position,
                line=after.line,
                accepted=len(calls),
                set_aside=len(set_aside),
            ):
                return
            store(calls, set_aside)
            if at_end:
                job.complete(holder, layout.columns)
                return
        stored = after.position


def resume_stalled_imports() -> int:
    """Imports whose worker died (or whose task never ran) queued again for any worker: each
    resumes from its last stored chunk. The sweeper calls this."""
    now = timezone.now()
    resumed = 0
    for job in CampaignImport.stalled(now).defer("content"):
        if job.release(now):
            run_import.enqueue(job.pk)
            resumed += 1
            logger.warning("import=%s had no live worker: queued again", job.pk)
    return resumed
