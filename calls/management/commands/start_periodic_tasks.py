"""Queue the worker's self-repeating tasks (reconcile, heartbeat, sweeper) unless queued already."""

from django.core.management.base import BaseCommand

from calls.tasks import PERIODIC, ensure_periodic


class Command(BaseCommand):
    help = (
        "Queue the periodic reconcile, the worker heartbeat and the sweeper once; safe to run "
        "on every deploy."
    )

    def handle(self, *args: str, **options: object) -> None:
        for periodic in PERIODIC:
            ensure_periodic(periodic)
            self.stdout.write(f"{periodic.name} is scheduled.")
