"""A worker's side of one-off tasks, run in the test's own process: each queued task of a kind
that is due runs as `db_worker` runs it (claimed, called, its end recorded)."""

from typing import Any

from django.tasks import Task
from django_tasks_db.models import DBTaskResult


def run_queued(task: Task[Any, Any]) -> list[Any]:
    """Run every queued, due `task`, oldest first; what each returned."""
    done = []
    for queued in DBTaskResult.objects.ready().filter(task_path=task.module_path):
        queued.claim("test-worker")
        done.append(task.call(*queued.args_kwargs["args"]))
        queued.set_successful(done[-1])
    return done
