"""A campaign's dispatch tasks and their seats (calls/engine/dispatch.py): each seat has one
task at a time, queued again for the run after or given up at the end; a dead task's seat is
seen dead (its lease ran out, or its task left the queue without taking it) and given a new
task, while a live or waiting one is left alone."""

import time
from datetime import UTC, timedelta
from datetime import time as clock_time

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from calls.engine.dispatch import (
    KeepAlive,
    dispatch_campaign,
    is_alive,
    keep_campaigns_dispatched,
    start_dispatchers,
)
from calls.models import DispatchSeat
from calls.models.engine import STALE
from tests.helpers.campaigns import running_campaign, statuses
from tests.helpers.dispatch import FakeGateway


def queued(campaign) -> list[DBTaskResult]:
    """The dispatch tasks waiting in the queue for `campaign`, by seat."""
    tasks = DBTaskResult.objects.filter(task_path=dispatch_campaign.module_path, status="READY")
    return sorted(
        (t for t in tasks if t.args_kwargs["args"][0] == campaign.pk),
        key=lambda t: t.args_kwargs["args"][1],
    )


def run(seat: DispatchSeat) -> str:
    """Run the task queued for `seat` now, as a worker would (taking it from the queue)."""
    seat.refresh_from_db()
    DBTaskResult.objects.filter(pk=seat.task_id).update(status="RUNNING")
    return dispatch_campaign.call(seat.campaign_id, seat.number, seat.ticket)


def taken(seat: DispatchSeat, at) -> None:
    """A worker took the seat's task from the queue and its task held the seat `at`."""
    DBTaskResult.objects.filter(pk=seat.task_id).update(status="RUNNING")
    assert seat.keep(seat.ticket, at)


@pytest.fixture
def gateway(monkeypatch) -> FakeGateway:
    sent = FakeGateway()
    monkeypatch.setattr("calls.engine.dispatch.get_gateway", lambda: sent)
    return sent


def test_starting_gives_each_seat_one_queued_task_and_starting_again_adds_none(
    bridge, sound, settings
):
    settings.OBD_CAMPAIGN_DISPATCHERS = 2
    campaign = running_campaign(bridge, sound)

    assert start_dispatchers(campaign) == 2
    assert start_dispatchers(campaign) == 0

    seats = list(campaign.seats.order_by("number"))
    assert [s.number for s in seats] == [0, 1]
    tasks = queued(campaign)
    assert [t.args_kwargs["args"] for t in tasks] == [
        [campaign.pk, s.number, s.ticket] for s in seats
    ]
    assert all(
        str(t.id) == s.task_id and s.held_until is None for t, s in zip(tasks, seats, strict=True)
    )


def test_a_task_sends_the_campaign_and_gives_its_seat_up_when_nothing_is_left(
    bridge, sound, settings, gateway
):
    settings.OBD_CAMPAIGN_DISPATCHERS = 1
    campaign = running_campaign(bridge, sound, rows=2, pace="50")
    start_dispatchers(campaign)

    assert run(campaign.seats.get()) == "empty"

    assert len(gateway.sent) == 2
    assert not campaign.seats.exists()
    campaign.refresh_from_db()
    assert campaign.status == "finished"


def test_a_task_whose_seat_was_given_to_another_sends_nothing(bridge, sound, settings, gateway):
    settings.OBD_CAMPAIGN_DISPATCHERS = 1
    campaign = running_campaign(bridge, sound)
    start_dispatchers(campaign)
    seat = campaign.seats.get()

    assert dispatch_campaign.call(campaign.pk, 0, "an-older-ticket") == "replaced"

    assert gateway.sent == []
    assert DispatchSeat.objects.get(pk=seat.pk).ticket == seat.ticket


def test_the_task_comes_back_when_the_window_opens(bridge, sound, settings, gateway):
    settings.OBD_CAMPAIGN_DISPATCHERS = 1
    opening = (timezone.now() + timedelta(hours=2)).astimezone(UTC)
    closing = opening + timedelta(hours=1)
    campaign = running_campaign(
        bridge,
        sound,
        window_start=clock_time(opening.hour, opening.minute),
        window_end=clock_time(closing.hour, closing.minute),
        window_timezone="UTC",
    )
    start_dispatchers(campaign)
    first = campaign.seats.get()

    assert run(first) == "window"

    [task] = queued(campaign)
    seat = campaign.seats.get()
    assert seat.ticket != first.ticket and task.args_kwargs["args"] == [campaign.pk, 0, seat.ticket]
    assert task.run_after == campaign.window_opens_after(timezone.now())
    assert set(statuses(campaign)) == {"pending"}
    assert is_alive(seat, timezone.now() + timedelta(hours=1))  # waiting for its time: alive


def test_a_task_out_of_budget_queues_its_seats_next_at_once(bridge, sound, settings, gateway):
    settings.OBD_CAMPAIGN_DISPATCHERS = 1
    settings.OBD_DISPATCH_BUDGET_SECONDS = 0
    campaign = running_campaign(bridge, sound)
    start_dispatchers(campaign)
    first = campaign.seats.get()

    assert run(first) == "budget"

    [task] = queued(campaign)
    assert task.args_kwargs["args"][2] == campaign.seats.get().ticket != first.ticket


def test_a_seat_is_alive_while_held_or_waiting_in_the_queue_and_dead_otherwise(
    bridge, sound, settings
):
    settings.OBD_CAMPAIGN_DISPATCHERS = 1
    campaign = running_campaign(bridge, sound)
    start_dispatchers(campaign)
    seat = campaign.seats.get()
    now, later = timezone.now(), timezone.now() + STALE * 3

    assert is_alive(seat, now) and is_alive(seat, later)  # queued, its task READY
    DBTaskResult.objects.filter(pk=seat.task_id).update(status="RUNNING")
    assert is_alive(seat, now)  # just taken: it is about to hold its seat
    assert not is_alive(seat, later)  # taken long ago and never held: its worker died
    DBTaskResult.objects.filter(pk=seat.task_id).delete()
    assert not is_alive(seat, later)

    assert seat.keep(seat.ticket, now)
    assert is_alive(seat, now + STALE) and not is_alive(seat, now + STALE * 2)


def test_the_sweeper_gives_a_dead_seat_a_new_task_and_leaves_a_live_one(bridge, sound, settings):
    settings.OBD_CAMPAIGN_DISPATCHERS = 2
    campaign = running_campaign(bridge, sound)
    start_dispatchers(campaign)
    dead, live = campaign.seats.order_by("number")
    long_ago = timezone.now() - STALE * 2
    taken(dead, long_ago)  # then its worker was killed
    taken(live, timezone.now())

    assert keep_campaigns_dispatched(timezone.now()) == 1

    fresh, kept = campaign.seats.order_by("number")
    assert fresh.ticket != dead.ticket and fresh.held_until is None
    assert (kept.ticket, kept.held_until) == (live.ticket, live.held_until)
    assert [t.args_kwargs["args"][2] for t in queued(campaign)] == [fresh.ticket]


def test_the_sweeper_redispatches_a_campaign_whose_tasks_all_died_and_finishes_an_empty_one(
    bridge, sound, settings
):
    settings.OBD_CAMPAIGN_DISPATCHERS = 2
    stalled = running_campaign(bridge, sound, rows=2)
    start_dispatchers(stalled)
    for seat in stalled.seats.all():
        taken(seat, timezone.now() - STALE * 2)
    never_dispatched = running_campaign(bridge, sound, rows=1)  # e.g. started before the engine
    empty = running_campaign(bridge, sound, rows=1)
    empty.calls.update(status="queued")

    assert keep_campaigns_dispatched(timezone.now()) == 4

    assert len(queued(stalled)) == 2
    assert stalled.seats.filter(held_until=None).count() == 2
    assert len(queued(never_dispatched)) == 2
    empty.refresh_from_db()
    assert empty.status == "finished"


def test_seats_of_a_campaign_that_ended_are_dropped(bridge, sound):
    campaign = running_campaign(bridge, sound)
    start_dispatchers(campaign)
    assert campaign.stop()
    keep_campaigns_dispatched(timezone.now())
    assert not campaign.seats.exists()


@pytest.mark.django_db(transaction=True)
def test_a_held_seat_is_kept_alive_while_its_task_runs_and_lost_once_given_to_another(
    bridge, sound, settings
):
    settings.OBD_CAMPAIGN_DISPATCHERS = 1
    campaign = running_campaign(bridge, sound)
    start_dispatchers(campaign)
    seat = campaign.seats.get()
    assert seat.keep(seat.ticket, timezone.now())
    first = seat.held_until

    with KeepAlive(seat, seat.ticket) as keeper:
        wait_for(lambda: DispatchSeat.objects.get(pk=seat.pk).held_until > first, "a renewal")
        DispatchSeat.objects.filter(pk=seat.pk).update(ticket="another-task")
        wait_for(keeper.lost.is_set, "the keeper to see its seat given away")


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + 30  # renewed every BEAT (2 s) by a thread of its own
    while not condition():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)
