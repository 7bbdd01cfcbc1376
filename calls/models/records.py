"""Records kept beside the calls: the do-not-call list, the audit trail and each user's
preferences."""

import csv
import functools
import io
import logging
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import models, transaction
from django.template.defaultfilters import pluralize
from django.utils import timezone

from calls.models.api import ApiKey
from calls.models.calls import CallLog
from calls.models.campaigns import Campaign
from calls.models.outbox import record_keypresses_received, record_opted_out
from calls.phone import normalize_number, pretty_number, validate_number

logger = logging.getLogger(__name__)


class DoNotCallQuerySet(models.QuerySet["DoNotCall"]):
    def record_opt_out(self, number: str, *, source: str, note: str = "") -> bool:
        """List a number that opted out (any form `normalize_number` reads; ValidationError if
        none). Idempotent: a listed number keeps its first entry. True when newly listed."""
        return (
            self.record_opt_outs([normalize_number(number, region="")], source=source, note=note)
            > 0
        )

    def record_opt_outs(self, numbers: Iterable[str], *, source: str, note: str = "") -> int:
        """List normalised numbers not listed yet, in one INSERT; how many were new. Two runs
        at once insert each number once (the unique number; conflicts ignored)."""
        wanted = set(numbers)
        listed = set(self.filter(number__in=wanted).values_list("number", flat=True))
        new = [
            DoNotCall(number=number, source=source, reason=note[:200])
            for number in sorted(wanted - listed)
        ]
        with transaction.atomic():
            self.bulk_create(new, ignore_conflicts=True)
            record_opted_out([entry.number for entry in new], source=source, reason=note[:200])
        return len(new)


class DoNotCall(models.Model):
    """A number that must never be called: refused by the form, skipped by campaigns."""

    class Source(models.TextChoices):
        MANUAL = "manual", "added by a person"
        WEBHOOK = "webhook", "opted out (provider webhook)"
        PROVIDER_LIST = "provider_list", "opted out (provider's unsubscribers list)"
        KEYPRESS = "keypress", "pressed the stop key"
        API = "api", "added through the API"

    number = models.CharField(
        max_length=20, unique=True, validators=[validate_number], help_text="e.g. 918867135123"
    )
    reason = models.CharField(
        max_length=200, blank=True, help_text="e.g. Customer asked on 2026-11-02"
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=16, choices=Source, default=Source.MANUAL)
    created_at = models.DateTimeField(default=timezone.now)

    objects = DoNotCallQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "do-not-call number"

    def __str__(self) -> str:
        return pretty_number(self.number)

    @classmethod
    def import_csv(cls, upload: UploadedFile[bytes], user: User | None = None) -> "DoNotCallImport":
        """Add the numbers of a CSV (first column, or one named number; optional reason).
        Unreadable, invalid, repeated and already listed numbers are skipped, each with why.
        A file that is not CSV text raises ValidationError, saying why, and adds nothing."""
        text = io.TextIOWrapper(upload, encoding="utf-8-sig", errors="replace", newline="")
        reader = csv.reader(text, strict=True)
        rows: list[tuple[int, list[str]]] = []  # (the line it ends on, its cells)
        ended = 0  # the line the last row read ends on
        try:
            for row in reader:
                ended = reader.line_num
                if row and any(cell.strip() for cell in row):
                    rows.append((ended, row))
        except csv.Error as exc:  # an unclosed quote, a value over the field size limit
            raise ValidationError(
                'Line %(line)s is not well-formed CSV (%(error)s): look for a quote (") left '
                "open or a value far too long, and import again.",
                code="malformed",
                params={"line": ended + 1, "error": exc},
            ) from None
        finally:
            text.detach()
        if any("\x00" in cell for _, row in rows for cell in row):  # PostgreSQL text cannot hold it
            raise ValidationError(
                "The file contains a NUL character, which is never part of a CSV text: "
                "save it as “CSV UTF-8” and import again.",
                code="nul",
            )
        lowered = [cell.strip().lower() for cell in rows[0][1]] if rows else []
        has_header = "number" in lowered
        number_at = lowered.index("number") if has_header else 0
        reason_at = lowered.index("reason") if "reason" in lowered else (None if has_header else 1)
        listed = set(cls.objects.values_list("number", flat=True))
        entries: dict[str, DoNotCall] = {}
        skipped: list[tuple[int, str]] = []
        for line, row in rows[has_header:]:
            try:
                number = normalize_number(row[number_at])
            except IndexError:
                skipped.append((line, "no number"))
                continue
            except ValidationError as exc:
                skipped.append((line, exc.messages[0]))
                continue
            if number in listed or number in entries:
                again = "already on the list" if number in listed else "repeated in the file"
                skipped.append((line, f"{pretty_number(number)} is {again}"))
                continue
            reason = (
                row[reason_at].strip() if reason_at is not None and reason_at < len(row) else ""
            )
            entries[number] = cls(number=number, reason=reason[:200], added_by=user)
        # Listed meanwhile by someone else: kept as is.
        DoNotCall.objects.bulk_create(entries.values(), ignore_conflicts=True)
        return DoNotCallImport(added=len(entries), skipped=skipped)


@dataclass
class DoNotCallImport:
    """What an import of do-not-call numbers did: how many it added, which rows it skipped."""

    added: int
    skipped: list[tuple[int, str]]  # (line, why)

    SKIPPED_LISTED = 5  # the first few skipped rows are named; the rest are counted

    def summary(self) -> str:
        said = f"{self.added} number{pluralize(self.added)} added"
        if not self.skipped:
            return f"{said}."
        named = "; ".join(
            f"line {line}: {why.rstrip('.')}" for line, why in self.skipped[: self.SKIPPED_LISTED]
        )
        more = len(self.skipped) - self.SKIPPED_LISTED
        rest = f"; and {more} more" if more > 0 else ""
        return f"{said}, {len(self.skipped)} row{pluralize(len(self.skipped))} skipped ({named}{rest})."


class AuditEntry(models.Model):
    """Who did what to a call or a campaign, and when. Catalogue edits are in the admin's log."""

    class Action(models.TextChoices):
        PLACED = "placed", "placed the call"
        RETRIED = "retried", "retried the call"
        CREATED = "created", "created the campaign"
        UPLOADED = "uploaded", "uploaded rows"
        STARTED = "started", "started the campaign"
        PAUSED = "paused", "paused the campaign"
        RESUMED = "resumed", "resumed the campaign"
        STOPPED = "stopped", "stopped the campaign"
        UNSCHEDULED = "unscheduled", "took the campaign off its schedule"
        CANCELED_CALL = "canceled_call", "canceled the call before it was sent"
        SOUND_UPLOADED = "sound_uploaded", "uploaded a sound"
        WEBHOOK_CREATED = "webhook_created", "created the provider's webhook"
        WEBHOOK_UPDATED = "webhook_updated", "updated the provider's webhook"
        SUBSCRIBED = "subscribed", "subscribed the webhook to an event"
        OPTED_OUT = "opted_out", "added a number to the do-not-call list"
        OPT_OUT_REMOVED = "opt_out_removed", "removed a number from the do-not-call list"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=20, choices=Action)
    call = models.ForeignKey(
        CallLog, null=True, blank=True, on_delete=models.CASCADE, related_name="audit"
    )
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="audit"
    )
    # An action taken through the REST API is recorded under the key's name.
    api_key = models.ForeignKey(
        "ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detail = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        # Only administrators hold it (no group has it): the provider account is theirs.
        permissions = [("connect_provider", "Can connect the portal to the provider")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.who} {self.get_action_display()}"

    @property
    def who(self) -> str:
        if self.api_key_id is not None:
            return self.api_key.shown_as if self.api_key else f"API key #{self.api_key_id}"
        return str(self.actor) if self.actor else ""

    @classmethod
    def record(
        cls,
        actor: AbstractBaseUser | None,
        action: "AuditEntry.Action",
        *,
        call: CallLog | None = None,
        campaign: Campaign | None = None,
        detail: str = "",
        api_key: "ApiKey | None" = None,
    ) -> "AuditEntry":
        return cls.objects.create(
            actor=actor,
            action=action,
            call=call,
            campaign=campaign,
            detail=detail[:300],
            api_key=api_key,
        )


@functools.cache
def time_zones() -> frozenset[str]:
    """The zones this machine knows (reading them walks the zoneinfo files: once is enough)."""
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in time_zones():
        raise ValidationError(
            "%(value)s is not a time zone (e.g. Asia/Kolkata).",
            code="invalid",
            params={"value": value},
        )


class UserPreference(models.Model):
    """How one person wants the portal shown (the time zone their times are written in) and
    what they want to be told of (calls/notifications.py)."""

    class ExportFlavour(models.TextChoices):
        # Excel on Windows reads UTF-8 only after a byte-order mark (Devanagari is garbled
        # without one) and splits columns on its locale's list separator.
        EXCEL = "excel", "Excel (comma-separated, as in India, the UK and the US)"
        EXCEL_SEMICOLON = "excel_semicolon", "Excel where lists are separated by ; (most of Europe)"
        PLAIN = "plain", "Plain UTF-8, comma-separated (LibreOffice, Google Sheets, scripts)"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text="e.g. Asia/Kolkata; empty: the portal's zone (TIME_ZONE)",
    )
    export_flavour = models.CharField(
        "exports open in", max_length=16, choices=ExportFlavour, default=ExportFlavour.EXCEL
    )
    notify_campaign_finished = models.BooleanField("when a campaign finishes", default=False)
    notify_failures_over = models.PositiveIntegerField(
        "when failures in 15 minutes reach",
        null=True,
        blank=True,
        help_text="A number of failed calls; empty: never",
    )
    notify_low_balance = models.BooleanField(
        "when the provider refuses calls for lack of balance", default=False
    )

    def __str__(self) -> str:
        return f"{self.user}: {self.time_zone or 'portal time zone'}"

    @classmethod
    def time_zone_of(cls, user: AbstractBaseUser) -> str:
        """The user's chosen zone, or "" for the portal's."""
        return cls.objects.filter(user_id=user.pk).values_list("time_zone", flat=True).first() or ""


def record_keypresses(call: CallLog, keys: str, now: datetime) -> bool:
    """Store a call's keys once (from a delivery or a look-up, whichever comes first); the first
    store alone acts on the flow's stop key."""
    with transaction.atomic():
        stored = CallLog.objects.filter(pk=call.pk, keypresses_at=None).update(
            keypresses=keys, keypresses_at=now
        )
        if stored:
            record_keypresses_received(call, keys)
        flow = call.flow
        if stored and flow and flow.stop_key and flow.stop_key in keys:
            # The customer pressed "stop": never called again (a listed number keeps its reason).
            reason = f"pressed {flow.choice_words(flow.stop_key)} on call #{call.pk}"
            added = DoNotCall.objects.record_opt_out(
                call.to, source=DoNotCall.Source.KEYPRESS, note=reason
            )
            logger.info("do-not-call call=%s added=%s", call.pk, added)
    if stored:
        call.keypresses, call.keypresses_at = keys, now
    return bool(stored)
