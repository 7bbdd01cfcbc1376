"""The deliveries worker as it runs: a real `manage.py apply_deliveries` process beside gunicorn.
A delivery posted to the webhook is applied to its call by the running worker; a worker killed
with SIGKILL mid-batch loses nothing and applies nothing twice once another runs. How soon a
delivery shows is a benchmark's figure (bench/webhook_load.py), not a test's."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from calls.models import CallEvent, CallLog
from tests.system.conftest import ROOT, database_url

pytestmark = pytest.mark.django_db(transaction=True)


def start_applier(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "apply_deliveries", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def applier() -> Iterator[subprocess.Popen[bytes]]:
    process = start_applier("--interval", "0.05")
    yield process
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)


def push(call_id: str, status: str = "BUSY", minute: int = 0) -> bytes:
    return json.dumps(
        {
            "mid": call_id,
            "status": status,
            "start_at": f"2026-11-02 10:{minute:02d}:00",
            "end_at": f"2026-11-02 10:{minute:02d}:09",
            "duration": "9",
        }
    ).encode()


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(
        f"{url}/webhooks/mobtexting/",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": "Bearer hook-secret"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_each_posted_delivery_is_applied_to_its_call_by_the_running_worker(
    gunicorn, applier, make_call
):
    calls = [make_call(provider_id=f"live-{n}") for n in range(20)]
    for call in calls:
        assert post(gunicorn.url, push(call.provider_id)) == 202
        # Generous: a loaded machine may be slow, but a delivery left waiting is a failure.
        deadline = time.monotonic() + 30
        while CallLog.objects.get(pk=call.pk).status != "busy":
            assert time.monotonic() < deadline, "the worker never applied the delivery"
            assert applier.poll() is None, "the worker exited"
            time.sleep(0.02)

    assert not CallEvent.objects.waiting().exists()


def test_a_worker_killed_mid_batch_loses_nothing_and_applies_nothing_twice(make_call):
    calls = [make_call(provider_id=f"kill-{n:04d}") for n in range(300)]
    for call in calls:  # two attempts each, the later (answered) stored first
        CallEvent.objects.store(source="webhook", body=push(call.provider_id, "ANSWER", 30))
        CallEvent.objects.store(source="webhook", body=push(call.provider_id, "NOANSWER", 10))
    total = CallEvent.objects.count()

    first = start_applier("--batch", "10", "--interval", "0.05")
    deadline = time.monotonic() + 30
    while CallEvent.objects.waiting().count() > total * 2 // 3:
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)  # mid-run: some batches applied, one maybe in hand
    first.wait(timeout=10)
    left = CallEvent.objects.waiting().count()
    assert 0 < left < total

    second = start_applier("--once")
    output = second.communicate(timeout=60)[0].decode()

    assert second.returncode == 0, output
    assert f"{left} deliveries applied." in output  # what the killed worker held came back
    assert not CallEvent.objects.waiting().exists()
    assert not CallEvent.objects.filter(call=None).exists()
    states = set(CallLog.objects.values_list("status", "attempts", "duration"))
    assert states == {("answered", 2, 9)}
