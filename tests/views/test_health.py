"""/healthz (calls/engine/health.py): open to all, it names each kind of background process with
its last beat and the age of the oldest due work, and answers 503 with the problems in words
when a process stopped (or cannot reach the database to beat) or work waits late. The
dashboard says the same to a supervisor."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.db import OperationalError

from calls.engine.clock import ensure_schedule
from calls.models import CallEvent, CallLog, Campaign, PeriodicJob
from tests.clock import pinned_now
from tests.helpers.campaigns import running_campaign
from tests.helpers.engine import beat, everything_beating
from tests.helpers.portal import logged_in, text_of
from tests.helpers.webhooks import push


def healthz(client) -> tuple[int, dict]:
    response = client.get("/healthz")
    return response.status_code, response.json()


def test_with_no_background_process_it_is_503_and_names_what_never_ran(client, db):
    status, body = healthz(client)

    assert status == 503
    assert (body["status"], body["database"], body["worker"]) == ("failing", "ok", "stale")
    assert body["worker_last_beat"] is None and body["worker_age_seconds"] is None
    assert body["processes"]["engine"] == {
        "status": "missing",
        "running": 0,
        "last_beat": None,
        "age_seconds": None,
    }
    assert "No engine is running: periodic jobs and webhook outcomes wait." in body["problems"]
    assert (
        "No worker for the campaigns queue is running: its tasks (campaigns) wait."
        in body["problems"]
    )


def test_with_every_kind_beating_and_nothing_late_it_is_ok(client, db):
    everything_beating(at=pinned_now() - timedelta(seconds=3))

    status, body = healthz(client)

    assert status == 200, body["problems"]
    assert (body["status"], body["worker"], body["problems"]) == ("ok", "ok", [])
    assert 3 <= body["worker_age_seconds"] < 10
    assert set(body["processes"]) == {
        "engine",
        "worker for the default queue",
        "worker for the campaigns queue",
    }
    assert all(kind["running"] == 1 for kind in body["processes"].values())
    assert body["calls_waiting_seconds"] == body["deliveries_waiting_seconds"] == 0


def test_one_worker_on_every_queue_serves_them_all(client, db):
    beat("engine")
    beat("worker", "*")
    assert healthz(client)[0] == 200


def test_a_process_that_stopped_beating_is_stale(client, db):
    beat("engine")
    beat("worker", "default")
    beat("worker", "campaigns", at=pinned_now() - timedelta(minutes=5))

    status, body = healthz(client)

    assert status == 503 and body["worker"] == "stale"
    assert body["processes"]["worker for the campaigns queue"]["status"] == "stale"
    assert body["worker_age_seconds"] >= 300  # the stalest kind speaks for them all
    assert body["problems"] == [
        "The worker for the campaigns queue was last seen about 5 minutes ago: its tasks "
        "(campaigns) wait."
    ]


def test_a_dead_engine_beside_a_live_one_is_no_problem(client, db):
    everything_beating()
    beat("engine", at=pinned_now() - timedelta(hours=1))
    status, body = healthz(client)
    assert status == 200 and body["processes"]["engine"]["running"] == 1


def test_deliveries_waiting_past_a_minute_are_a_problem(client, db):
    everything_beating()
    event = CallEvent.objects.store(source="webhook", body=json.dumps(push()).encode())
    CallEvent.objects.filter(pk=event).update(received_at=pinned_now() - timedelta(seconds=90))

    status, body = healthz(client)

    assert status == 503 and 90 <= body["deliveries_waiting_seconds"] < 100
    assert body["problems"] == ["Webhook outcomes have waited 90 s to be applied."]


def test_a_periodic_job_overdue_with_nobody_running_it_is_a_problem(client, db):
    everything_beating()
    ensure_schedule()
    PeriodicJob.objects.update(next_run_at=pinned_now() + timedelta(minutes=1))
    PeriodicJob.objects.filter(name="reconcile").update(
        next_run_at=pinned_now() - timedelta(minutes=10)
    )
    status, body = healthz(client)
    assert status == 503 and body["periodic_overdue_job"] == "reconcile"
    assert body["problems"] == ["The periodic job “reconcile” is about 10 minutes overdue."]

    # Running it (its lease held) is not being overdue.
    PeriodicJob.objects.filter(name="reconcile").update(
        lease_until=pinned_now() + timedelta(seconds=10)
    )
    assert healthz(client)[0] == 200


def test_a_running_campaign_nobody_sends_is_a_problem(client, bridge, sound):
    everything_beating()
    campaign = running_campaign(bridge, sound, rows=2)
    Campaign.objects.filter(pk=campaign.pk).update(next_send_at=pinned_now() - timedelta(minutes=3))

    status, body = healthz(client)

    assert status == 503 and body["calls_waiting_seconds"] >= 180
    assert body["problems"] == ["A call due to be sent has waited about 3 minutes."]

    # A dispatcher keeps its pace: the next send is reserved ahead.
    Campaign.objects.filter(pk=campaign.pk).update(next_send_at=pinned_now() + timedelta(seconds=1))
    assert healthz(client)[0] == 200


def test_a_single_call_past_its_time_and_unsent_is_a_problem(client, bridge, sound):
    everything_beating()
    CallLog.objects.create(
        bridge=bridge,
        audio=sound,
        to="918867135123",
        not_before=pinned_now() - timedelta(hours=2),
    )
    status, body = healthz(client)
    assert status == 503 and body["problems"] == ["A call due to be sent has waited about 2 hours."]


def test_a_database_that_cannot_be_reached_is_503(client, db, monkeypatch):
    def unreachable(now):
        raise OperationalError("the connection is closed")

    monkeypatch.setattr("calls.engine.health.process_kinds", unreachable)
    status, body = healthz(client)
    assert (status, body["database"], body["problems"]) == (
        503,
        "unavailable",
        ["The database cannot be reached."],
    )


@pytest.mark.parametrize("ok", [True, False])
def test_the_dashboard_tells_a_supervisor_in_words_and_an_agent_nothing(supervisor, agent, ok):
    # The clock stands still: on a loaded machine the page took a second, and read "seen 1 s ago".
    with time_machine.travel(pinned_now(), tick=False):
        if ok:
            everything_beating()
        else:
            beat("worker", "*")
        board = text_of(logged_in(supervisor).get("/").content.decode())
    if ok:
        assert "Background work is running (the engine: 1 running, seen 0 s ago;" in board
        assert "no work waits late" in board
    else:
        assert "Background work is not being done" in board
        assert "No engine is running: periodic jobs and webhook outcomes wait." in board
    assert "Background work" not in text_of(logged_in(agent).get("/").content.decode())


def test_a_browser_asking_for_favicon_ico_is_sent_to_the_portal_s_icon(client):
    """Asked on /healthz and the API's JSON pages, before anyone logs in: no 404 logged."""
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith(".svg") and "favicon" in response["Location"]
