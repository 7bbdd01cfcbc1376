"""A campaign's CSV upload: stored whole in the database when it arrives (so a worker on any
machine can read it), read in chunks by one worker at a time under a lease, and either completed
(the campaign becomes a draft) or undone (its rows removed; a campaign made for it removed too).

All or nothing, at any size: chunks are committed as they are read, each with the mark to resume
from in the same transaction, while the campaign is `importing` (nothing starts or sends it).
The import's own rows are those of its campaign above the ids it noted on arrival, so a failed or
canceled one removes exactly them. Every move below is a compare-and-set on the expected state
(and, for a worker's moves, on the lease it holds)."""

import uuid
from datetime import datetime, timedelta

import psycopg
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.humanize.templatetags.humanize import intcomma
from django.db import connection, models, transaction
from django.db.models import F, Max, Q
from django.template.defaultfilters import pluralize
from django.utils import timezone

from calls.models.calls import CallLog
from calls.models.campaigns import Campaign
from calls.models.records import AuditEntry

# A worker renews its lease with every chunk (well under a second of work); one that stopped
# renewing is presumed dead after this, and its import is taken up by another.
LEASE = timedelta(seconds=20)
# Taken up this many times without finishing (a worker killed each time, e.g. out of memory):
# the file is the likely cause, so the import fails instead of stopping workers for ever.
MAX_ATTEMPTS = 3


class SetAsideRow(models.Model):
    """A CSV row that did not become a call, with why; downloadable to fix and upload again."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="set_aside_rows")
    line = models.PositiveIntegerField()
    values = models.JSONField(default=dict)
    reason = models.CharField(max_length=300)

    class Meta:
        ordering = ["campaign", "line"]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"

    @property
    def number(self) -> str:
        """The row's number as typed, whatever its column was called."""
        column = next((c for c, target in self.campaign.columns if target == "number"), "")
        number: str = self.values.get(column, "")
        return number


class CampaignImport(models.Model):
    """One CSV uploaded into a campaign, from arrival to done (or undone)."""

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting for a worker"
        READING = "reading", "Reading"
        UNDOING = "undoing", "Removing the rows read"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    ACTIVE = frozenset({State.WAITING, State.READING, State.UNDOING})
    _READABLE = (State.WAITING, State.READING)  # not yet given up or canceled

    # Kept after a campaign made for it is removed (no constraint, nothing cascades), so the
    # campaign's page can still say why it is gone.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.DO_NOTHING, db_constraint=False, related_name="imports"
    )
    made_campaign = models.BooleanField(
        default=False, help_text="The campaign was created with this upload: removed with it"
    )
    filename = models.CharField(max_length=255)
    size = models.PositiveIntegerField(help_text="Bytes")
    content = models.BinaryField(editable=False, help_text="The file; emptied once it ends")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=16, choices=State, default=State.WAITING, db_index=True)
    ending = models.CharField(max_length=16, choices=State, blank=True)  # what undoing ends as
    error = models.TextField(blank=True, help_text="Why it failed, for the person who uploaded")
    holder = models.UUIDField(null=True, editable=False)  # the worker's run holding the lease
    lease_until = models.DateTimeField(null=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The campaign's rows up to these ids were there before; the import's own are above them.
    calls_before = models.BigIntegerField(default=0)
    set_aside_before = models.BigIntegerField(default=0)
    # Progress, written with each chunk: where to resume, and what was found so far.
    length = models.PositiveIntegerField(default=0, help_text="Characters of the file's text")
    position = models.PositiveIntegerField(default=0, help_text="Characters read and stored")
    line = models.PositiveIntegerField(default=0, help_text="Lines read and stored")
    accepted = models.PositiveIntegerField(default=0)
    set_aside = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_state_display()})"

    @property
    def percent(self) -> int:
        return min(100, 100 * self.position // self.length) if self.length else 0

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE

    @property
    def summary(self) -> str:
        return (
            f"{intcomma(self.accepted)} row{pluralize(self.accepted)} ready to call, "
            f"{intcomma(self.set_aside)} set aside."
        )

    # --- arrival and the person's cancel (web) ---------------------------------------------

    @classmethod
    def receive(
        cls, campaign: Campaign, filename: str, content: bytes, user: User | None
    ) -> "CampaignImport | None":
        """Store an upload for `campaign`: one just created `importing`, or a draft, which
        becomes `importing` (None when it is no longer a draft). Inside the caller's
        transaction; no row of the file is read here."""
        made = campaign.status == Campaign.Status.IMPORTING
        if not made and not campaign.begin_import():
            return None
        calls = campaign.calls.aggregate(last=Max("id"))["last"] if not made else None
        set_aside = campaign.set_aside_rows.aggregate(last=Max("id"))["last"] if not made else None
        job = cls.objects.create(
            campaign=campaign,
            made_campaign=made,
            filename=filename[:255],
            size=len(content),
            uploaded_by=user,
            lease_until=timezone.now() + LEASE,  # the task queued on commit has it first
            calls_before=calls or 0,
            set_aside_before=set_aside or 0,
        )
        job._store(content)
        return job

    def _store(self, data: bytes) -> None:
        """The file's bytes, in one UPDATE. On PostgreSQL bound as binary: Django's cursors bind
        client-side, sending a bytea as hex text twice its size for the server to parse (20 MB
        took 0.6 s to store so, 0.15 s as binary; on SQLite 0.05 s). Compressing it first cost
        more than it saved (0.1 s for 16 MB of CSV, 0.4 s for 20 MB of random bytes)."""
        self.content = data
        if connection.vendor != "postgresql":
            CampaignImport.objects.filter(pk=self.pk).update(content=data)
            return
        table = connection.ops.quote_name(self._meta.db_table)
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:  # this transaction's connection
            cursor.execute(f"UPDATE {table} SET content = %b WHERE id = %s", [data, self.pk])  # noqa: S608  # nosec B608

    def cancel(self, user: User) -> bool:
        """Stop reading and remove what was read (a worker does it: it may be many rows)."""
        canceled = CampaignImport.objects.filter(pk=self.pk, state__in=self._READABLE).update(
            state=self.State.UNDOING,
            ending=self.State.CANCELED,
            error=f"{user.get_username()} canceled the import.",
        )
        return bool(canceled)

    # --- a worker's moves, under its lease ------------------------------------------------

    @classmethod
    def claim(cls, pk: int, holder: uuid.UUID, now: datetime) -> "CampaignImport | None":
        """Take the import for this worker's run unless a live worker holds it (it is then
        None): a waiting one starts reading; one whose worker died is taken up where its last
        chunk ended."""
        free = Q(holder=None) | Q(lease_until__lt=now)
        lease = {"holder": holder, "lease_until": now + LEASE}
        mine = cls.objects.filter(pk=pk).filter(free)
        took = mine.filter(state__in=cls._READABLE).update(
            state=cls.State.READING, attempts=F("attempts") + 1, **lease
        ) or mine.filter(state=cls.State.UNDOING).update(**lease)
        return cls.objects.get(pk=pk) if took else None

    def _ours(self, holder: uuid.UUID, state: str) -> "models.QuerySet[CampaignImport]":
        return CampaignImport.objects.filter(pk=self.pk, state=state, holder=holder)

    def advance(
        self,
        holder: uuid.UUID,
        since: int,
        *,
        length: int,
        position: int,
        line: int,
        accepted: int,
        set_aside: int,
    ) -> bool:
        """Record a chunk read (in the transaction that stores its rows), renewing the lease.
        False when the import is no longer this worker's to read from `since` (canceled, or
        its lease ran out and another worker took it): the chunk must not be stored."""
        moved = (
            self._ours(holder, self.State.READING)
            .filter(position=since)
            .update(
                length=length,
                position=position,
                line=line,
                accepted=F("accepted") + accepted,
                set_aside=F("set_aside") + set_aside,
                lease_until=timezone.now() + LEASE,
            )
        )
        return bool(moved)

    def complete(self, holder: uuid.UUID, columns: list[list[str]]) -> bool:
        """The last chunk is stored: the campaign becomes a draft whose rows set aside are this
        file's (an earlier upload's are replaced). In the last chunk's transaction."""
        ended = self._ours(holder, self.State.READING).update(
            state=self.State.DONE, content=b"", finished_at=timezone.now(), lease_until=None
        )
        if not ended:
            return False
        self.refresh_from_db(fields=["accepted", "set_aside"])
        campaign = Campaign.objects.get(pk=self.campaign_id)
        campaign.set_aside_rows.filter(id__lte=self.set_aside_before).delete()
        campaign.end_import(columns=columns, rows_set_aside=self.set_aside)
        # The upload that made an API key's campaign came through that key (there is no user).
        AuditEntry.record(
            self.uploaded_by,
            AuditEntry.Action.UPLOADED,
            campaign=campaign,
            detail=self.summary,
            api_key=campaign.api_key if self.made_campaign else None,
        )
        return True

    def give_up(self, holder: uuid.UUID, error: str) -> bool:
        """The file cannot be imported: undo what was read, saying why."""
        return bool(
            self._ours(holder, self.State.READING).update(
                state=self.State.UNDOING, ending=self.State.FAILED, error=error
            )
        )

    def undo_some(self, holder: uuid.UUID, limit: int) -> int:
        """Remove up to `limit` of the rows this import stored, renewing the lease; how many
        (0: none left, or the import is no longer this worker's)."""
        with transaction.atomic():
            if not self._ours(holder, self.State.UNDOING).update(
                lease_until=timezone.now() + LEASE
            ):
                return 0
            for model, above in (
                (CallLog, self.calls_before),
                (SetAsideRow, self.set_aside_before),
            ):
                ours = model.objects.filter(campaign_id=self.campaign_id, id__gt=above)
                # The `limit` lowest ids: a range, so the DELETE binds two values, not thousands.
                ids = list(ours.order_by("id").values_list("id", flat=True)[:limit])
                if ids:
                    ours.filter(id__lte=ids[-1]).delete()
                    return len(ids)
        return 0

    def end_undone(self, holder: uuid.UUID) -> bool:
        """Every row read is removed: the import ends failed or canceled, and its campaign is
        removed (if made for it) or a draft again, as it was before the upload."""
        with transaction.atomic():
            ended = self._ours(holder, self.State.UNDOING).update(
                state=F("ending"), content=b"", finished_at=timezone.now(), lease_until=None
            )
            campaign = Campaign.objects.filter(pk=self.campaign_id)
            if ended and self.made_campaign:
                campaign.delete()
            elif ended and (draft := campaign.first()):  # unless deleted meanwhile
                draft.end_import()
        return bool(ended)

    @classmethod
    def that_removed(cls, campaign_pk: int) -> "CampaignImport | None":
        """The failed or canceled upload a campaign was made for and removed with: it says why,
        to whoever waited on it (campaign__pk: an id past the column's integers finds none)."""
        return (
            cls.objects.defer("content")
            .filter(
                campaign__pk=campaign_pk,
                made_campaign=True,
                state__in=[cls.State.FAILED, cls.State.CANCELED],
            )
            .first()
        )

    @property
    def why_not_imported(self) -> str:
        return f"{self.filename} was not imported: {self.error}"

    # --- the sweeper ----------------------------------------------------------------------

    @classmethod
    def stalled(cls, now: datetime) -> "models.QuerySet[CampaignImport]":
        """Imports nobody works on: their worker died (its lease ran out), or the task queued
        for them never ran."""
        return cls.objects.filter(state__in=cls.ACTIVE, lease_until__lt=now)

    def release(self, now: datetime) -> bool:
        """Free a stalled import for the task about to be queued (claimed only after this
        lease, so the sweeper queues one task per stall); one taken up too often fails."""
        stalled = CampaignImport.objects.filter(pk=self.pk, lease_until__lt=now)
        if self.state != self.State.UNDOING and self.attempts >= MAX_ATTEMPTS:
            return bool(
                stalled.filter(state__in=self._READABLE).update(
                    state=self.State.UNDOING,
                    ending=self.State.FAILED,
                    error=f"The import stopped {self.attempts} times before the end of the file "
                    "(its worker was stopped each time). Nothing was kept: try again, or split "
                    "the file into smaller ones.",
                    holder=None,
                    lease_until=now + LEASE,
                )
            )
        return bool(stalled.update(holder=None, lease_until=now + LEASE))
