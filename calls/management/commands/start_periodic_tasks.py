"""Put the periodic jobs on the schedule (the engine does it too when it starts)."""

from django.core.management.base import BaseCommand

from calls.engine.clock import ensure_schedule
from calls.engine.jobs import JOBS


class Command(BaseCommand):
    help = (
        "Put every periodic job (sweeper, schedules, reconcile, keypress look-ups, opt-outs, "
        "notices, tallies) on the engine's schedule unless it is there; safe to run on every "
        "deploy. The engine (manage.py engine) runs them."
    )

    def handle(self, *args: str, **options: object) -> None:
        added = ensure_schedule()
        for job in JOBS:
            said = "put on the schedule" if job.name in added else "on the schedule"
            self.stdout.write(f"{job.name}: {said}, every {job.every()}.")
