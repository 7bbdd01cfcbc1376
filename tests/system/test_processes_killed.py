"""Every kind of the portal's processes SIGKILLed mid-work, one after the other, against a real
local HTTP provider that posts each call's outcome back to the webhook door: both campaign
workers while a POST waits for its answer, the engine while it applies deliveries, the web
server while deliveries come in. Each is started again as its supervisor would. With default
settings: every number is POSTed exactly once, every call ends with its outcome, no delivery
is lost, the campaign finishes, the work resumes within seconds, and /healthz says all is well
at the end. The times measured are printed (bench figures, not asserted beyond "it resumed")."""

import time
from collections.abc import Iterator

import pytest
from django.utils import timezone

from calls.engine.dispatch import start_dispatchers
from calls.models import CallEvent, CallLog, Campaign
from tests.system.conftest import database_url
from tests.system.processes import Processes, wait_until, worker
from tests.system.standin import SECRET, StandIn

pytestmark = pytest.mark.django_db(transaction=True)
ROWS = 40
HELD = 6  # the POST that waits for its answer while the campaign workers are killed


@pytest.fixture
def standin() -> Iterator[StandIn]:
    provider = StandIn(hold_on=HELD)
    yield provider
    provider.close()


@pytest.fixture
def portal(standin: StandIn, tmp_path) -> Iterator[Processes]:
    env = {
        "DATABASE_URL": database_url(),
        "MOBTEXTING_API_TOKEN": "real-token",
        "MOBTEXTING_API_URL": standin.url,
        "MOBTEXTING_READ_TIMEOUT": "60",
        "OBD_WEBHOOK_SECRET": SECRET,
    }
    processes = Processes(env, tmp_path)
    processes.start("web")
    for name, queue in [("campaigns-1", "campaigns"), ("campaigns-2", "campaigns")]:
        processes.start(name, worker(queue))
    processes.start("default", worker("default"))
    processes.start("engine")
    processes.wait_for_web()
    standin.door = processes.url
    yield processes
    processes.stop()


def settled(campaign: Campaign) -> bool:
    campaign.refresh_from_db()
    return (
        campaign.status == Campaign.Status.FINISHED
        and not campaign.calls.exclude(status="answered").exists()
        and not CallEvent.objects.waiting().exists()
    )


def test_each_kind_of_process_killed_mid_work_loses_nothing_and_sends_nothing_twice(
    portal, standin, bridge, sound
):
    campaign = Campaign.objects.create(name="Kill test", bridge=bridge, audio=sound, pace=4)
    CallLog.objects.bulk_create(
        CallLog(bridge=bridge, audio=sound, to=f"9198765{i:05d}", campaign=campaign)
        for i in range(ROWS)
    )
    assert campaign.start()
    start_dispatchers(campaign)

    # Both campaign workers, one of them waiting for a POST's answer.
    assert standin.held.wait(60), "the held POST never came"
    portal.kill("campaigns-1")
    portal.kill("campaigns-2")
    workers_killed = time.monotonic()
    posted = standin.count()
    standin.release.set()  # the provider placed that call: it rang, whatever we recorded
    portal.start("campaigns-1")
    portal.start("campaigns-2")
    workers_resumed = wait_until(lambda: standin.count() > posted, 60, "a POST after the kill")

    # The engine, while deliveries come in and are applied.
    wait_until(lambda: standin.count() >= 20, 120, "twenty POSTs")
    portal.kill("engine")
    killed_at = timezone.now()
    portal.start("engine")
    engine_resumed = wait_until(
        lambda: CallEvent.objects.filter(applied_at__gt=killed_at).exists(),
        60,
        "a delivery applied after the engine was killed",
    )

    # The web server, while deliveries come in.
    wait_until(lambda: standin.count() >= 30, 120, "thirty POSTs")
    portal.kill("web")
    web_killed = time.monotonic()
    portal.start("web")
    web_resumed = wait_until(
        lambda: bool(standin.delivered) and standin.delivered[-1] > web_killed,
        60,
        "a delivery taken after the web server was killed",
    )

    wait_until(lambda: settled(campaign), 180, "every call to end with its outcome")
    finished_after = time.monotonic() - workers_killed

    assert all(portal.alive().values()), portal.alive()
    assert standin.per_number() == {f"9198765{i:05d}": 1 for i in range(ROWS)}
    for call in campaign.calls.all():
        assert call.provider_id == standin.placed[call.to][0], (call.to, call.status)
    status, health = portal.health()
    assert (status, health["problems"]) == (200, []), health
    assert max(workers_resumed, engine_resumed, web_resumed) < 60
    print(
        f"\n{ROWS} rows at 4/s, default settings: both campaign workers killed -> next POST "
        f"after {workers_resumed:.1f} s; engine killed -> deliveries applied again after "
        f"{engine_resumed:.1f} s; web killed -> the door took deliveries again after "
        f"{web_resumed:.1f} s ({standin.refused} refused meanwhile, posted again); every call "
        f"settled {finished_after:.1f} s after the workers were killed; POSTs per number: all 1."
    )
