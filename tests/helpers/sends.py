"""The worker's side of placing a call, run in the test's own process: the send a request queued
on commit is queued (the test's transaction never commits, so its on-commit work is run as a
commit would), then each queued send task runs as `db_worker` runs it."""

from collections.abc import Callable
from contextlib import AbstractContextManager

from django.tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from calls.engine.sends import send_call
from tests.helpers.tasks import run_queued

Capture = Callable[..., AbstractContextManager[list[Callable[[], object]]]]


class QueuedSends:
    def __init__(self, capture: Capture) -> None:
        self._capture = capture
        self._open()

    def _open(self) -> None:
        self._commits = self._capture(execute=True)
        self._commits.__enter__()

    def commit(self) -> None:
        """What the request's commit does: its on-commit work (queuing the send) runs now."""
        self._commits.__exit__(None, None, None)
        self._open()

    def queued(self) -> list[DBTaskResult]:
        """The send tasks waiting, due or not."""
        self.commit()
        waiting = DBTaskResult.objects.filter(status=TaskResultStatus.READY)
        return list(waiting.filter(task_path=send_call.module_path))

    def run(self) -> list[str]:
        """Run every send task queued and due, as a worker would; what each returned."""
        self.commit()
        return run_queued(send_call)

    def close(self) -> None:
        self._commits.__exit__(None, None, None)
