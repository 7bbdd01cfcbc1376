"""/healthz (calls/views.py healthz): open to all, it says whether the worker's heartbeat is
recent."""

from datetime import timedelta

from calls.models import WorkerHeartbeat
from tests.clock import pinned_now
from tests.helpers.portal import health


def test_healthz_needs_no_login_and_says_the_worker_is_stale_without_a_heartbeat(client, db):
    body = health(client)
    assert body["database"] == "ok"
    assert body["worker"] == "stale"
    assert body["worker_last_beat"] is None


def test_healthz_says_ok_after_a_heartbeat(client, db):
    WorkerHeartbeat.beat()
    body = health(client)
    assert (body["database"], body["worker"]) == ("ok", "ok")
    assert 0 <= body["worker_age_seconds"] < 5


def test_healthz_says_stale_after_an_old_heartbeat(client, db):
    WorkerHeartbeat.objects.create(pk=1, beat_at=pinned_now() - timedelta(minutes=10))
    body = health(client)
    assert body["worker"] == "stale"
    assert body["worker_age_seconds"] >= 600
