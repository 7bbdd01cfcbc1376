"""Settle calls that stayed without an outcome: ask the provider's status API about each one."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from calls.models import CallLog
from calls.provider import GatewayError, get_gateway
from calls.reconcile import reconcile_call


class Command(BaseCommand):
    help = "Look up calls left queued or unknown past OBD_RECONCILE_AFTER_MINUTES; report stuck pending rows."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--minutes", type=int, default=settings.OBD_RECONCILE_AFTER_MINUTES)

    def handle(self, *args, minutes: int, **options) -> None:
        cutoff = timezone.now() - timedelta(minutes=minutes)
        stuck = CallLog.objects.filter(status=CallLog.Status.PENDING, submitted_at__lt=cutoff)
        for call in stuck:
            self.stdout.write(
                self.style.WARNING(
                    f"{call}: pending since {call.submitted_at:%Y-%m-%d %H:%M}: the process stopped while "
                    "sending; it may or may not have been placed. Check the provider's panel."
                )
            )
        gateway = get_gateway()
        waiting = CallLog.objects.filter(
            status__in=[CallLog.Status.QUEUED, CallLog.Status.UNKNOWN], created_at__lt=cutoff
        ).exclude(provider_id="")
        settled = 0
        for call in waiting.iterator():
            try:
                settled += reconcile_call(call, gateway)
            except GatewayError as exc:
                self.stdout.write(self.style.ERROR(f"{call}: {exc}"))
        self.stdout.write(f"{settled} call(s) settled, {stuck.count()} stuck pending.")
