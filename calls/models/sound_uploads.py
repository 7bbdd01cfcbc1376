"""A sound a person uploads: the page stores it, a worker sends it to the provider
(calls/sounds.py)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models

from calls.models.asks import WorkerAsk

# Uploading this long means the worker died mid-POST (a live one gives up after its timeouts).
LOST = timedelta(minutes=10)


class SoundUpload(WorkerAsk):
    """An audio file on its way to the provider's Sounds. The page stores the bytes (the form
    caps them at 10 MB) and queues a worker; the worker claims the row (pending → uploading),
    POSTs it through the gateway and writes the outcome here, which the page, refreshing itself,
    shows. A POST is never sent twice: an upload whose worker died mid-way (left "uploading")
    becomes "unknown", for a person to check the provider's sound list."""

    RUNNING = "uploading"

    class State(models.TextChoices):
        PENDING = "pending", "waiting for a worker"
        UPLOADING = "uploading", "uploading"
        DONE = "done", "uploaded"
        FAILED = "failed", "failed"
        UNKNOWN = "unknown", "unknown"

    name = models.CharField(max_length=100)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=50)
    content = models.BinaryField()  # emptied once the outcome is known
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    error = models.CharField(max_length=500, blank=True)
    asset = models.ForeignKey(
        "calls.AudioAsset", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"sound upload “{self.name}” ({self.state})"

    @classmethod
    def give_up_lost(cls, now: datetime) -> None:
        """Uploads whose worker died mid-POST: the provider may hold the sound, or not."""
        cls.objects.filter(state=cls.State.UPLOADING, started_at__lt=now - LOST).update(
            state=cls.State.UNKNOWN,
            content=b"",
            error="The worker stopped while uploading: the provider may or may not have the "
            "sound. Check the provider's sound list before uploading it again.",
        )

    def settle(self, *, asset: "models.Model | None" = None, error: str = "") -> bool:
        """Write the outcome of this worker's POST; False when the row was no longer its own."""
        state = self.State.FAILED if error else self.State.DONE
        return bool(
            SoundUpload.objects.filter(pk=self.pk, state=self.State.UPLOADING).update(
                state=state, asset=asset, error=error[:500], content=b""
            )
        )
