"""A Check or Connect asked for on the Connect page: the page stores it, a worker runs it
against the provider (calls/connect.py)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models

from calls.models.asks import WorkerAsk

# Running this long means the worker died part-way (a live one gives up after its timeouts).
LOST = timedelta(minutes=5)


class ProviderCheck(WorkerAsk):
    """An administrator pressed Check or Connect. The page stores the ask and refreshes itself;
    a worker claims it (pending → running, once), runs it through the gateway and writes what
    it found and did here. A run whose worker died is not run again by itself: Connect is
    idempotent, so the page says to press it again, which finishes what was begun."""

    class Action(models.TextChoices):
        CHECK = "check", "check"
        CONNECT = "connect", "connect"

    class State(models.TextChoices):
        PENDING = "pending", "waiting for a worker"
        RUNNING = "running", "running"
        DONE = "done", "done"
        STOPPED = "stopped", "stopped part-way"

    action = models.CharField(max_length=10, choices=Action.choices)
    url = models.CharField(max_length=1000)
    # Why a Connect asked for ran as a check (in words), shown with the result.
    note = models.CharField(max_length=300, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    outcome = models.JSONField(default=dict, blank=True)  # connect.Report.as_json()
    asked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"provider {self.action} of {self.url[:60]} ({self.state})"

    @classmethod
    def give_up_lost(cls, now: datetime) -> None:
        """Runs whose worker died part-way: never resumed by themselves."""
        cls.objects.filter(state=cls.State.RUNNING, started_at__lt=now - LOST).update(
            state=cls.State.STOPPED
        )

    def finish(self, outcome: dict[str, object]) -> None:
        ProviderCheck.objects.filter(pk=self.pk, state=self.State.RUNNING).update(
            state=self.State.DONE, outcome=outcome
        )
