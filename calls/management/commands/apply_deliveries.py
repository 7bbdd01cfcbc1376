"""The deliveries worker: applies what the webhook stored, in batches, until stopped."""

import logging
import signal
import time
from types import FrameType

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections

from calls.models.events import BATCH, apply_waiting

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Parse, match and apply stored webhook deliveries in batches, until stopped (SIGTERM or "
        "Ctrl-C finish the batch in hand first). Run one or more beside the web server: on "
        "PostgreSQL they share the queue. --once applies what waits and exits."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=BATCH)
        parser.add_argument(
            "--interval", type=float, default=0.1, help="Seconds to wait when nothing waits."
        )
        parser.add_argument("--once", action="store_true")

    def handle(
        self, *args: str, batch: int, interval: float, once: bool, **options: object
    ) -> None:
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        applied = 0
        while not stopping:
            close_old_connections()
            try:
                claimed = apply_waiting(batch)
            except DatabaseError:
                # The database went away or a batch failed: nothing was marked applied, so the
                # batch waits for the next try; the worker stays up.
                logger.exception("deliveries batch failed; trying again shortly")
                claimed = 0
            applied += claimed
            if claimed < batch:
                if once:
                    break
                time.sleep(interval)  # a full batch means more wait: take the next at once
        self.stdout.write(f"{applied} deliveries applied.")
