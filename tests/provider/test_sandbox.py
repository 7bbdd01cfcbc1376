"""The sandbox (calls/provider/sandbox.py): test-number endings give fixed results, and an
outcome arrives through the webhook path."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django_tasks_db.models import DBTaskResult

from calls.models import CallEvent, CallLog
from calls.provider.sandbox import SandboxGateway, deliver_sandbox_outcome
from tests.helpers.portal import call_form


def test_the_sandbox_answers_then_its_outcome_arrives_through_the_webhook_path(
    agent_client, bridge, sound, sends
):
    agent_client.post("/calls/new/", call_form(bridge, audio=sound, to="+91 98765 40002"))
    assert sends.run() == ["queued"]
    call = CallLog.objects.get()
    task = DBTaskResult.objects.get(task_path=deliver_sandbox_outcome.module_path)
    deliver_sandbox_outcome.call(*task.args_kwargs["args"])
    call.refresh_from_db()
    assert call.status == "busy" and call.provider_status == "BUSY"
    assert CallEvent.objects.get().source == "sandbox"


@pytest.mark.parametrize("to", ["+91 98765 40001", "+91 98765 40002"])  # answered, busy
def test_the_sandboxs_webhook_comes_once_its_call_has_ended(agent_client, bridge, sound, sends, to):
    agent_client.post("/calls/new/", call_form(bridge, audio=sound, to=to))
    sends.run()
    task = DBTaskResult.objects.get(task_path=deliver_sandbox_outcome.module_path)
    push = json.loads(task.args_kwargs["args"][0])
    zone = ZoneInfo(settings.OBD_PROVIDER_TIMEZONE)
    start, end = (
        datetime.fromisoformat(push[f"{t}_at"]).replace(tzinfo=zone) for t in ("start", "end")
    )

    assert (end - start).total_seconds() == int(push["duration"])
    assert task.run_after >= end  # no page shows a call ended later than its outcome came
    assert (int(push["duration"]) > 0) == (push["status"] == "ANSWER")


@pytest.mark.parametrize(
    ("ending", "status"), [("0004", "rejected"), ("0005", "unknown"), ("0009", "error")]
)
def test_sandbox_test_numbers_give_their_fixed_submission_result(db, ending, status):
    payload = {"bridge": "918068287602", "to": "91987654" + ending, "audio": "x"}
    assert SandboxGateway().send(payload).status == status
