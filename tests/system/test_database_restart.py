"""PostgreSQL restarted under the portal's real processes, mid-campaign and mid-webhooks, three
times (twice `pg_ctl restart -m fast`, once stopped for a few seconds then started), on a
throwaway server of the test's own. No process exits: each reconnects by itself and the work
goes on. Every number is POSTed exactly once, every outcome the provider posted is applied,
the campaign finishes, and /healthz said the database was unavailable while it was down and
all was well at the end. Times to resume are printed (bench figures, not assertions)."""

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests.system.cluster import Cluster, throwaway_cluster
from tests.system.conftest import ROOT
from tests.system.processes import Processes, wait_until, worker
from tests.system.standin import BRIDGE, SECRET, StandIn

ROWS = 60
SETUP = f"""
from calls.engine.dispatch import start_dispatchers
from calls.models import AudioAsset, Bridge, CallLog, Campaign
bridge = Bridge.objects.create(number="{BRIDGE}", label="Bengaluru")
sound = AudioAsset.objects.create(name="Reminder", sound_id="39888925-718e-43bb-a8b1-d4a3c0de0001")
campaign = Campaign.objects.create(name="Restart test", bridge=bridge, audio=sound, pace=4)
CallLog.objects.bulk_create(
    CallLog(bridge=bridge, audio=sound, to=f"9198765{{i:05d}}", campaign=campaign)
    for i in range({ROWS})
)
assert campaign.start()
start_dispatchers(campaign)
"""


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as server:
        yield server


@pytest.fixture
def standin() -> Iterator[StandIn]:
    provider = StandIn()
    yield provider
    provider.close()


def manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, timeout=180
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


class HealthWatch(threading.Thread):
    """/healthz read ten times a second: what a monitor would have seen."""

    def __init__(self, portal: Processes) -> None:
        super().__init__(daemon=True)
        self.portal = portal
        self.seen: list[tuple[int, str, str]] = []  # (status, database, worker)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.1):
            status, body = self.portal.health()
            self.seen.append((status, body.get("database", ""), body.get("worker", "")))


def test_the_portal_outlives_database_restarts_mid_campaign_and_mid_webhooks(
    cluster, standin, tmp_path
):
    env = {
        "DATABASE_URL": cluster.url(),
        "MOBTEXTING_API_TOKEN": "real-token",
        "MOBTEXTING_API_URL": standin.url,
        "OBD_WEBHOOK_SECRET": SECRET,
    }
    portal = Processes(env, tmp_path)
    manage(portal.env, "migrate", "--no-input", "-v", "0")
    for name in ("web", "engine"):
        portal.start(name)
    portal.start("campaigns-1", worker("campaigns"))
    portal.start("campaigns-2", worker("campaigns"))
    portal.start("default", worker("default"))
    watch = HealthWatch(portal)
    try:
        portal.wait_for_web()
        standin.door = portal.url
        manage(portal.env, "shell", "-c", SETUP)
        watch.start()
        resumed = []

        for moment, (posts, action) in enumerate([(8, "restart"), (25, "outage"), (40, "restart")]):
            wait_until(lambda: standin.count() >= posts, 120, f"{posts} POSTs")  # noqa: B023
            if action == "restart":
                cluster.pg_ctl("restart")
            else:
                cluster.pg_ctl("stop")
                time.sleep(5)  # down a while: every process must wait, none may exit
                assert all(portal.alive().values()), portal.alive()
                cluster.pg_ctl("start")
            back, posted = time.monotonic(), standin.count()
            delivered = len(standin.delivered)
            wait_until(lambda: standin.count() > posted, 60, "a POST after the restart")  # noqa: B023
            sending = time.monotonic() - back
            wait_until(lambda: len(standin.delivered) > delivered, 60, "a delivery taken")  # noqa: B023
            resumed.append((moment + 1, action, sending, time.monotonic() - back))
            assert all(portal.alive().values()), (portal.alive(), portal.log("campaigns-1")[-3000:])

        def settled() -> bool:
            [(finished, unsettled, waiting)] = cluster.query(
                "SELECT (SELECT count(*) FROM calls_campaign WHERE status = 'finished'),"
                " (SELECT count(*) FROM calls_calllog WHERE status <> 'answered'),"
                " (SELECT count(*) FROM calls_callevent WHERE applied_at IS NULL)"
            )
            return (finished, unsettled, waiting) == (1, 0, 0)

        wait_until(settled, 180, "every call to end with its outcome")
        wait_until(lambda: portal.health()[0] == 200, 60, "/healthz to say all is well")
    finally:
        watch.stopped.set()
        portal.stop()

    assert standin.per_number() == {f"9198765{i:05d}": 1 for i in range(ROWS)}
    ids = dict(cluster.query('SELECT "to", provider_id FROM calls_calllog'))
    assert ids == {number: call_id for number, (call_id, _) in standin.placed.items()}
    assert (503, "unavailable") in {(status, database) for status, database, _ in watch.seen}
    print(
        f"\n{ROWS} rows at 4/s; after each restart, the next POST and the next delivery taken: "
        + "; ".join(
            f"#{n} {action}: {send:.1f} s, {take:.1f} s" for n, action, send, take in resumed
        )
        + f"; /healthz 503 in {sum(1 for s, _, _ in watch.seen if s == 503)} of "
        f"{len(watch.seen)} reads; POSTs per number: all 1."
    )
