"""Background work, run by `manage.py db_worker` (django-tasks-db: the database is the queue)."""

from django.tasks import task

from calls.models import CallEvent


@task
def deliver_sandbox_outcome(body: str) -> int:
    """The sandbox's webhook: the same ingest path a real delivery takes."""
    return CallEvent.objects.ingest(source=CallEvent.Source.SANDBOX, body=body.encode()).pk
