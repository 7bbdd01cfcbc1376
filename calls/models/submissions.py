"""A call's earlier submissions: what each try at sending it came to, kept when it is retried."""

from django.db import models


class FailedSubmission(models.Model):
    """One try at sending a call that never reached the provider (status `error`). A retry
    reuses the call's row, so the try it replaces is kept here for the call's timeline."""

    call = models.ForeignKey("CallLog", on_delete=models.CASCADE, related_name="failed_submissions")
    submitted_at = models.DateTimeField(null=True, blank=True, help_text="When the POST began.")
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["submitted_at", "id"]

    def __str__(self) -> str:
        return f"Failed submission of call #{self.call_id}"
