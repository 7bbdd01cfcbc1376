"""A worker: django-tasks-db's own worker loop (one-off tasks: campaign dispatch, sends, the
sandbox's outcomes), kept alive through database restarts and seen by /healthz."""

from django.core.management.base import BaseCommand, CommandParser
from django_tasks_db.management.commands.db_worker import Worker

from calls.engine.processes import DATABASE_ERRORS, Backoff, Beater, Process
from calls.models import WorkerHeartbeat


class Command(BaseCommand):
    help = (
        "Take tasks from the named queues (comma-separated; * for all) and run them, as "
        "django-tasks-db's db_worker does, but: the database failing (a restart, a lost "
        "connection) is waited out and the worker goes on instead of exiting, and it beats "
        "every few seconds on a thread of its own so /healthz sees it. SIGTERM or Ctrl-C "
        "finish the task in hand first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue-name", default="default", help="Queues to take (default).")
        parser.add_argument(
            "--interval", type=float, default=0.5, help="Seconds to wait when no task waits."
        )
        parser.add_argument(
            "--no-startup-delay",
            action="store_false",
            dest="startup_delay",
            help="Do not wait a random moment (up to 1 s) before each start.",
        )

    def handle(
        self, *args: str, queue_name: str, interval: float, startup_delay: bool, **options: object
    ) -> None:
        process = Process(WorkerHeartbeat.Kind.WORKER, queues=queue_name)
        worker = Worker(
            queue_names=queue_name.split(","),
            interval=interval,
            batch=False,
            backend_name="default",
            startup_delay=startup_delay,
            max_tasks=None,
            worker_id=process.id,  # the queue records which process took each task
            excluded_queue_names=[],
        )
        worker.configure_signals()  # SIGTERM: finish the task in hand, then `run` returns
        beater = Beater(process)
        beater.start()
        backoff = Backoff(f"worker {process.id}")
        try:
            while True:
                try:
                    worker.run()  # returns only once stopped by a signal
                    return
                except DATABASE_ERRORS as error:
                    # Raised out of the library's loop: while it looked for a task, or while it
                    # recorded one's end. A task cut off mid-way stays RUNNING in the library's
                    # table; the portal's own leases (calls/engine/dispatch.py, row leases)
                    # bring its work back.
                    backoff.failed(error)
        finally:
            beater.stop()
            process.forget()
