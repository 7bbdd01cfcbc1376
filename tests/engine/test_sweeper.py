"""The sweeper (calls/engine/sweeper.py): rows a dead process held go back to the queue when
their POST never began, or become `unknown` (never sent again) when it may have; a campaign
whose dispatch died is dispatched again (tests/engine/test_dispatch.py); a killed process's
beat is dropped a day later."""

from datetime import timedelta

from django.utils import timezone

from calls.engine.sweeper import sweep_abandoned_work
from calls.models import CallLog, WorkerHeartbeat
from tests.helpers.campaigns import running_campaign
from tests.helpers.engine import beat


def test_the_sweeper_requeues_rows_never_begun_and_gives_up_on_rows_maybe_sent(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=3)
    never_begun, maybe_sent, fresh = campaign.calls.order_by("id")
    long_ago = timezone.now() - timedelta(minutes=10)
    CallLog.objects.filter(pk=never_begun.pk).update(lease_until=long_ago)
    CallLog.objects.filter(pk=maybe_sent.pk).update(lease_until=long_ago, submitted_at=long_ago)
    CallLog.objects.filter(pk=fresh.pk).update(
        lease_until=timezone.now() + timedelta(minutes=1), submitted_at=timezone.now()
    )

    swept = sweep_abandoned_work()

    assert (swept["requeued"], swept["unknown"]) == (1, 1)
    for call in (never_begun, maybe_sent, fresh):
        call.refresh_from_db()
    assert (never_begun.status, never_begun.lease_until) == ("pending", None)
    assert maybe_sent.status == "unknown" and "not sent again" in maybe_sent.error
    assert (fresh.status, fresh.lease_until is not None) == ("pending", True)


def test_with_default_settings_a_dead_workers_rows_come_back_within_half_a_minute(bridge, sound):
    campaign = running_campaign(bridge, sound, rows=2)
    claimed, begun = campaign.calls.order_by("id")
    now = timezone.now()
    CallLog.objects.filter(pk__in=[claimed.pk, begun.pk]).update(
        lease_until=now + timedelta(seconds=10)  # the default lease past the batch's slot
    )
    CallLog.objects.filter(pk=begun.pk).update(submitted_at=now)

    assert sweep_abandoned_work(now + timedelta(seconds=11)) == {
        "requeued": 1,
        "unknown": 0,
        "dispatch_tasks": 2,  # the campaign had no dispatch task: it gets its seats
        "imports": 0,
        "beats_forgotten": 0,
    }
    assert sweep_abandoned_work(now + timedelta(seconds=31))["unknown"] == 1


def test_a_killed_processs_beat_is_dropped_a_day_later(db):
    beat("engine", at=timezone.now() - timedelta(hours=25))
    kept = beat("engine", at=timezone.now() - timedelta(hours=2))
    assert sweep_abandoned_work()["beats_forgotten"] == 1
    assert list(WorkerHeartbeat.objects.all()) == [kept]


def test_a_sweep_with_nothing_abandoned_writes_no_log_line(bridge, sound, caplog):
    """It runs every few seconds: a line each time, for nothing, would bury the log."""
    campaign = running_campaign(bridge, sound, rows=1)
    long_ago = timezone.now() - timedelta(minutes=10)
    campaign.calls.update(status="answered", submitted_at=long_ago)
    caplog.clear()

    with caplog.at_level("INFO"):
        sweep_abandoned_work()

    assert [record.getMessage() for record in caplog.records] == []
