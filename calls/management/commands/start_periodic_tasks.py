"""Queue the worker's self-repeating tasks (reconcile, heartbeat) unless they are queued already."""

from django.core.management.base import BaseCommand
from django_tasks_db.models import DBTaskResult

from calls.tasks import reconcile_calls_periodically, worker_heartbeat


class Command(BaseCommand):
    help = (
        "Queue the periodic reconcile and the worker heartbeat once; safe to run on every deploy."
    )

    def handle(self, *args, **options) -> None:
        for periodic in (reconcile_calls_periodically, worker_heartbeat):
            # A running one queues its own next run: queuing another would start a second chain.
            waiting = DBTaskResult.objects.filter(
                task_path=periodic.module_path, status__in=["READY", "RUNNING"]
            )
            if not waiting.exists():
                periodic.enqueue()
            self.stdout.write(f"{periodic.name} is scheduled.")
