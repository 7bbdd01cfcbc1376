"""What the last read of each of the provider's lists found, for /healthz: when, how many rows,
and how many of them could not be read (a shape we do not know, or hostile content)."""

from django.db import models
from django.utils import timezone


class ProviderListReadQuerySet(models.QuerySet["ProviderListRead"]):
    def note(self, name: str, *, rows: int, unreadable: int, complete: bool = True) -> None:
        """Keep this read as the list's last one (one row a list; the latest read wins)."""
        self.update_or_create(
            name=name,
            defaults={
                "read_at": timezone.now(),
                "rows": rows,
                "unreadable": unreadable,
                "complete": complete,
            },
        )

    def health(self) -> dict[str, dict[str, object]]:
        """Each list's last read, as /healthz shows it."""
        return {
            read.name: {
                "read_at": read.read_at,
                "rows": read.rows,
                "unreadable": read.unreadable,
                "complete": read.complete,
            }
            for read in self.order_by("name")
        }


class ProviderListRead(models.Model):
    class Name(models.TextChoices):
        UNSUBSCRIBERS = "unsubscribers", "the unsubscribers list (opt-outs)"
        RECORDINGS = "recordings", "the recordings list"

    name = models.CharField(max_length=16, choices=Name, unique=True)
    read_at = models.DateTimeField()
    rows = models.PositiveIntegerField()
    unreadable = models.PositiveIntegerField()
    # False when the provider failed part-way, or the list ran past the pages read at a time.
    complete = models.BooleanField()

    objects = ProviderListReadQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name} read {self.read_at:%Y-%m-%d %H:%M:%S}"
