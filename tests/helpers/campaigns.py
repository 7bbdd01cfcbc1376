"""Campaigns as the tests make them: a draft, its rows uploaded from CSV text, a running one."""

from datetime import UTC, datetime
from decimal import Decimal

from django.tasks import TaskResultStatus
from django.test import Client, TestCase
from django_tasks_db.models import DBTaskResult

from calls.engine.imports import run_import, work_on
from calls.models import Campaign, CampaignImport

BAD_NUMBER = "12345 is not a valid phone number with country code (for example +91 88671 35123)."


LATIN_1 = "number,Name,otp\n+91 88671 35123,José,1\n".encode("latin-1")


def make_campaign(bridge, *, flow=None, audio=None, pace: str = "2", **fields) -> Campaign:
    return Campaign.objects.create(
        name="November reminders",
        bridge=bridge,
        flow=flow,
        audio=audio,
        pace=Decimal(pace),
        **fields,
    )


def upload(campaign: Campaign, content: str | bytes, user=None) -> CampaignImport:
    """Rows uploaded into a draft (or a campaign made `importing` for them), read to the end by
    a worker's run in this process: the import as it ended (done, or failed saying why)."""
    raw = content.encode() if isinstance(content, str) else content
    job = CampaignImport.receive(campaign, "numbers.csv", raw, user)
    assert job is not None, f"a {campaign.status} campaign takes no upload"
    work_on(job.pk)
    job.refresh_from_db()
    if Campaign.objects.filter(pk=campaign.pk).exists():  # else removed with its failed upload
        campaign.refresh_from_db()
    return job


def queued_imports() -> list[int]:
    """The imports whose task waits in the queue (the upload's, queued when it committed)."""
    queued = DBTaskResult.objects.filter(
        task_path=run_import.module_path, status=TaskResultStatus.READY
    ).order_by("enqueued_at")
    return [task.args_kwargs["args"][0] for task in queued]


def run_queued_imports() -> list[str]:
    """What a worker does with the import tasks queued (each run as db_worker would run it)."""
    return [work_on(pk) for pk in queued_imports()]


def post_then_import(client: Client, path: str, data: dict):
    """Post an upload as a browser does, then let a worker run the import task it queued on
    commit; the post's response."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(path, data)
    run_queued_imports()
    return response


def number(i: int) -> str:
    return f"9188671{40000 + i:05d}"


def running_campaign(bridge, sound, rows: int = 3, pace: str = "1", **fields) -> Campaign:
    """A started audio campaign with `rows` pending calls to number(0), number(1), ..."""
    campaign = make_campaign(bridge, audio=sound, pace=pace, **fields)
    upload(campaign, "number\n" + "".join(f"{number(i)}\n" for i in range(rows)))
    assert campaign.start()
    return campaign


def statuses(campaign: Campaign) -> list[str]:
    return list(campaign.calls.order_by("id").values_list("status", flat=True))


def utc(hour: int, minute: int = 0, day: int = 2, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)
