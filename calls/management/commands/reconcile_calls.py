"""Settle calls that stayed without an outcome: ask the provider's status API about each one."""

from django.conf import settings
from django.core.management.base import BaseCommand

from calls.reconcile import reconcile_waiting, stuck_pending


class Command(BaseCommand):
    help = (
        "Look up calls left queued or unknown past OBD_RECONCILE_AFTER_MINUTES and report rows "
        "stuck pending. The worker also runs this periodically (see start_periodic_tasks)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--minutes", type=int, default=settings.OBD_RECONCILE_AFTER_MINUTES)

    def handle(self, *args, minutes: int, **options) -> None:
        stuck = list(stuck_pending(minutes))
        for call in stuck:
            self.stdout.write(
                self.style.WARNING(
                    f"{call}: pending since {call.submitted_at:%Y-%m-%d %H:%M}: the process stopped "
                    "while sending; it may or may not have been placed. Check the provider's panel."
                )
            )
        settled = reconcile_waiting(
            minutes, report=lambda m: self.stdout.write(self.style.ERROR(m))
        )
        self.stdout.write(f"{settled} call(s) settled, {len(stuck)} stuck pending.")
