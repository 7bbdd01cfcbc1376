"""A worker: django-tasks-db's own worker (one-off tasks: campaign dispatch, sends, the sandbox's
outcomes), woken at once when a task is queued, kept alive through database restarts and seen by
/healthz."""

import logging
import random
import time

from django.core.management.base import BaseCommand, CommandParser
from django_tasks_db.management.commands.db_worker import Worker

from calls.engine.processes import DATABASE_ERRORS, Backoff, Beater, Process
from calls.engine.wakeup import TASKS, Listener
from calls.models import WorkerHeartbeat


class EachRoundQuiet(logging.Filter):
    """The library's worker logs its start and its end at INFO. Here it runs once per wake-up
    (many times a minute), so those two lines are left out; its tasks' lines stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Starting worker", "No more tasks to run"))


class Command(BaseCommand):
    help = (
        "Take tasks from the named queues (comma-separated; * for all) and run them, as "
        "django-tasks-db's db_worker does, but: on PostgreSQL a queued task wakes it at once "
        "(LISTEN/NOTIFY; it polls meanwhile when it cannot listen, and on SQLite); the database "
        "failing (a restart, a lost connection) is waited out and the worker goes on instead of "
        "exiting; and it beats every few seconds on a thread of its own so /healthz sees it. "
        "SIGTERM or Ctrl-C finish the task in hand first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue-name", default="default", help="Queues to take (default).")
        parser.add_argument(
            "--interval",
            type=float,
            default=0.5,
            help="Seconds between looks for tasks when nothing wakes it (tasks queued for later "
            "are taken at the first look after their time).",
        )
        parser.add_argument(
            "--no-startup-delay",
            action="store_false",
            dest="startup_delay",
            help="Do not wait a random moment (up to 1 s) before starting.",
        )

    def handle(
        self, *args: str, queue_name: str, interval: float, startup_delay: bool, **options: object
    ) -> None:
        process = Process(WorkerHeartbeat.Kind.WORKER, queues=queue_name)
        worker = Worker(
            queue_names=queue_name.split(","),
            interval=interval,
            batch=True,  # `run` takes the tasks ready now and returns; the wait is ours
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=process.id,  # the queue records which process took each task
            excluded_queue_names=[],
        )
        logging.getLogger("django_tasks_db").addFilter(EachRoundQuiet())
        worker.configure_signals()  # SIGTERM: finish the task in hand, then stop
        if startup_delay:  # workers started together do not all look at once
            time.sleep(random.random())  # noqa: S311  # nosec B311
        listener = Listener([TASKS])
        beater = Beater(process)
        beater.start()
        backoff = Backoff(f"worker {process.id}")
        try:
            while worker.running:
                try:
                    worker.run()
                except DATABASE_ERRORS as error:
                    # Raised out of the library's loop: while it looked for a task, or while it
                    # recorded one's end. A task cut off mid-way stays RUNNING in the library's
                    # table; the portal's own leases (calls/engine/dispatch.py, row leases)
                    # bring its work back.
                    backoff.failed(error)
                    continue
                backoff.recovered()
                if worker.running:
                    listener.wait(interval)
        finally:
            listener.close()
            beater.stop()
            process.forget()
