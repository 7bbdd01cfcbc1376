"""The engine: applies webhook deliveries as they come and runs the periodic jobs from the one
schedule, until stopped (calls/engine/clock.py)."""

import signal
from types import FrameType

from django.core.management.base import BaseCommand, CommandParser

from calls.engine.clock import Engine
from calls.models.events import BATCH


class Command(BaseCommand):
    help = (
        "Run the engine: webhook deliveries applied in batches as they come, and the periodic "
        "jobs (sweeper, schedules, reconcile, keypress look-ups, opt-outs, notices, tallies) "
        "from one schedule. Run one or more (on any machine, same database): each due run is "
        "taken by one. A database restart is waited out; SIGTERM or Ctrl-C finish what is in "
        "hand first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=BATCH, help="Deliveries a batch.")
        parser.add_argument(
            "--interval",
            type=float,
            default=0.1,
            help="Seconds between looks for deliveries when nothing wakes it (on SQLite, or while "
            "it cannot listen; on PostgreSQL a stored delivery wakes it at once).",
        )

    def handle(self, *args: str, batch: int, interval: float, **options: object) -> None:
        run_until_stopped(Engine(batch=batch, interval=interval))


def run_until_stopped(engine: Engine) -> None:
    """Run `engine` until SIGTERM or SIGINT (then it finishes what it holds)."""
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    engine.run(lambda: stopping)
