"""Settle calls that stayed without an outcome: recover rows a dead process left, then ask the
provider's status API about each call still waiting."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from calls.models import CallLog
from calls.reconcile import reconcile_waiting


class Command(BaseCommand):
    help = (
        "Recover rows a dead worker left (back to the queue, or unknown when their POST may have "
        "begun), then look up calls left queued or unknown past OBD_RECONCILE_AFTER_MINUTES. "
        "The engine also does both periodically (manage.py engine)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--minutes", type=int, default=settings.OBD_RECONCILE_AFTER_MINUTES)

    def handle(self, *args: str, minutes: int, **options: object) -> None:
        requeued, unknown = CallLog.objects.recover_abandoned(timezone.now())
        if requeued or unknown:
            self.stdout.write(
                self.style.WARNING(
                    f"{requeued} row(s) a dead worker held went back to the queue; {unknown} "
                    "whose POST may have begun are now unknown, to be settled below."
                )
            )
        settled = reconcile_waiting(
            minutes, report=lambda m: self.stdout.write(self.style.ERROR(m))
        )
        self.stdout.write(f"{settled} call(s) settled.")
