"""A recording looked up for a person: the page asks, a worker answers (calls/recordings.py)."""

from datetime import datetime, timedelta

from django.db import models

# An ask unanswered this long lost its task (a worker killed mid-way): the next visit asks again.
LOST = timedelta(minutes=1)
# The recordings list's links last an hour: one found is used for half of that.
FRESH = timedelta(minutes=30)


class RecordingLookup(models.Model):
    """A person opened a call's recording whose first link had expired. The page stores the ask
    and refreshes itself; a worker asks the provider's recordings list and writes the answer
    here: a fresh link, or why there is none (safe to show). The page never waits on the
    provider, so a provider that hangs holds a worker, never a web process."""

    call = models.OneToOneField(
        "calls.CallLog", on_delete=models.CASCADE, related_name="recording_lookup"
    )
    asked_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    link = models.TextField(blank=True)
    failure = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"recording look-up for call {self.call_id}"

    @property
    def answered(self) -> bool:
        return self.answered_at is not None and self.answered_at >= self.asked_at

    def fresh_link(self, now: datetime) -> str:
        """The link found, while it still plays; "" when there is none."""
        found = self.answered_at if self.answered and self.link else None
        return self.link if found is not None and now - found < FRESH else ""

    @classmethod
    def ask(cls, call_id: int, now: datetime) -> bool:
        """Ask for a look-up unless one is under way; True when this visit asked (and so must
        queue the worker's task). Of two visits at once, one asks (compare-and-set)."""
        lookup, made = cls.objects.get_or_create(call_id=call_id, defaults={"asked_at": now})
        if made:
            return True
        if not lookup.answered and now - lookup.asked_at < LOST:
            return False
        again = cls.objects.filter(pk=lookup.pk, asked_at=lookup.asked_at)
        return bool(again.update(asked_at=now, link="", failure=""))

    @classmethod
    def answer(cls, call_id: int, now: datetime, *, link: str = "", failure: str = "") -> None:
        cls.objects.filter(call_id=call_id).update(
            answered_at=now, link=link, failure=failure[:500]
        )

    def forget_failure(self) -> None:
        """A failure is shown once, to the page that waited for it; the next visit asks again."""
        RecordingLookup.objects.filter(pk=self.pk, asked_at=self.asked_at).delete()
