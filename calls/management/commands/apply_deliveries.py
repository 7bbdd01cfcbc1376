"""A deliveries applier alone: the engine's deliveries part, without the schedule. The engine
applies deliveries already; run this beside it only to apply more at once."""

from django.core.management.base import BaseCommand, CommandParser

from calls.engine.clock import Engine
from calls.engine.processes import Process
from calls.management.commands.engine import run_until_stopped
from calls.models import WorkerHeartbeat
from calls.models.events import BATCH, apply_waiting


class Command(BaseCommand):
    help = (
        "Parse, match and apply stored webhook deliveries in batches, until stopped (SIGTERM or "
        "Ctrl-C finish the batch in hand first). The engine does this too; run more beside it "
        "for more throughput: on PostgreSQL they share the queue. --once applies what waits "
        "and exits."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=BATCH)
        parser.add_argument(
            "--interval",
            type=float,
            default=0.1,
            help="Seconds between looks for deliveries when nothing wakes it (on SQLite, or while "
            "it cannot listen; on PostgreSQL a stored delivery wakes it at once).",
        )
        parser.add_argument("--once", action="store_true")

    def handle(
        self, *args: str, batch: int, interval: float, once: bool, **options: object
    ) -> None:
        if once:
            applied = 0
            while claimed := apply_waiting(batch):
                applied += claimed
            self.stdout.write(f"{applied} deliveries applied.")
            return
        process = Process(WorkerHeartbeat.Kind.DELIVERIES)
        run_until_stopped(Engine(process, jobs=(), batch=batch, interval=interval))
