"""Notices: what a person asked to be told of (calls/notifications.py finds it), each once."""

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone


class NoticeQuerySet(models.QuerySet["Notice"]):
    def unread(self) -> "NoticeQuerySet":
        return self.filter(read_at=None)

    def post(
        self, user_id: int, kind: str, key: str, *, title: str, link: str = ""
    ) -> "Notice | None":
        """The notice, new; None when this person already has it (kind and key unique): two
        checks running at once post it once."""
        try:
            with transaction.atomic():
                return self.create(
                    user_id=user_id, kind=kind, key=key, title=title[:200], link=link
                )
        except IntegrityError:
            return None


class Notice(models.Model):
    class Kind(models.TextChoices):
        CAMPAIGN_FINISHED = "campaign_finished", "a campaign finished"
        FAILURES = "failures", "failures passed your threshold"
        LOW_BALANCE = "low_balance", "calls refused for lack of balance"
        UNREADABLE_OPTOUTS = "unreadable_optouts", "opt-outs the provider listed could not be read"
        # Not asked for: every supervisor hears of it (the campaign waits for one to resume it).
        CAMPAIGN_PAUSED = "campaign_paused", "a campaign paused itself"
        CALLBACKS_DISABLED = "callbacks_disabled", "a callback endpoint was disabled"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notices"
    )
    kind = models.CharField(max_length=20, choices=Kind)
    # Which occurrence: the campaign's id, the start of the window counted, or the digest of
    # the unreadable rows (one notice per distinct problem).
    key = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    link = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    objects = NoticeQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "key"], name="notice_once_per_user")
        ]

    def __str__(self) -> str:
        return self.title

    def claim_email(self) -> bool:
        """True for the one sender that may e-mail it (compare-and-set): never mailed twice."""
        stamp = timezone.now()
        if not Notice.objects.filter(pk=self.pk, emailed_at=None).update(emailed_at=stamp):
            return False
        self.emailed_at = stamp
        return True

    def release_email(self) -> None:
        """The mail did not go: the notice no longer says it was e-mailed (only this claim's)."""
        Notice.objects.filter(pk=self.pk, emailed_at=self.emailed_at).update(emailed_at=None)
        self.emailed_at = None
