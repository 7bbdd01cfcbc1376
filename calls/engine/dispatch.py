"""A campaign's dispatch tasks: one-off tasks on the `campaigns` queue (a worker runs each for a
while; `Dispatcher` in calls/tasks.py sends at the campaign's pace), at most one per seat.

A seat (`DispatchSeat`) is held by the task running for it under a lease that the task's own
keep-alive thread renews every BEAT; the queue library cannot tell a dead worker's task from a
live one, the seat can. A task killed, or cut off from the database, stops renewing: within
STALE the sweeper queues another task for its seat, and rows the dead task had claimed come
back to the queue when their own (short) lease runs out. A task that finds its seat given to
another stops at the end of its run instead of queueing its next."""

import logging
import threading
import uuid
from datetime import datetime

from django.conf import settings
from django.db import connections, transaction
from django.tasks import TaskResultStatus, task
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone

from calls.engine.processes import DATABASE_ERRORS, Backoff
from calls.models import Campaign, DispatchSeat
from calls.models.engine import BEAT, STALE
from calls.provider.configured import get_gateway
from calls.tasks import Dispatcher
from calls.vocabulary import CAMPAIGN_ENDED

logger = logging.getLogger(__name__)


@task(queue_name="campaigns")
def dispatch_campaign(campaign_id: int, seat: int, ticket: str) -> str:
    """Send the campaign's rows for a while from `seat`, then queue the next run for the seat
    (now, or when rows come due or its window opens) or give the seat up (nothing left, paused,
    stopped, ended). Returns why it stopped.

    The database failing mid-way (a restart) is waited out and a fresh Dispatcher goes on, for
    as long as the seat stays this task's: rows the failed one had claimed come back when their
    lease runs out, and a row whose POST had begun is left to the sweeper (never sent again)."""
    held = DispatchSeat.objects.filter(campaign_id=campaign_id, number=seat).first()
    if held is None or not held.keep(ticket, timezone.now()):
        logger.info("campaign=%s seat=%s: task %s replaced", campaign_id, seat, ticket)
        return "replaced"
    backoff = Backoff(f"campaign={campaign_id} seat={seat}")
    while True:
        with KeepAlive(held, ticket) as keeper:
            try:
                dispatcher = Dispatcher(Campaign.objects.get(pk=campaign_id), get_gateway())
                reason = dispatcher.run()
            except DATABASE_ERRORS as error:
                backoff.failed(error)
                if keeper.lost.is_set():
                    return "replaced"
                continue
        try:
            follow(held, ticket, reason, dispatcher)
            return reason
        except DATABASE_ERRORS as error:
            backoff.failed(error)  # then once more: each step of `follow` may be repeated


def follow(seat: DispatchSeat, ticket: str, reason: str, dispatcher: Dispatcher) -> None:
    """What the seat does after a run that stopped for `reason`."""
    if reason == "later":
        queue_for(seat, ticket, run_after=dispatcher.resume_at)
    elif reason == "budget":
        queue_for(seat, ticket)  # let other work through, then go on
    elif reason == "window":
        opens = dispatcher.campaign.window_opens_after(timezone.now())
        queue_for(seat, ticket, run_after=opens)
    else:
        seat.leave(ticket)


class KeepAlive(threading.Thread):
    """Renews a held seat's lease every BEAT while its task runs (its own connection), as a
    context manager around the run. It goes quiet when the process dies, and stops (`lost`)
    when the seat was given to another task; a database that fails it is tried again at the
    next beat."""

    def __init__(self, seat: DispatchSeat, ticket: str) -> None:
        super().__init__(name=f"seat-{seat.pk}", daemon=True)
        self.seat, self.ticket = seat, ticket
        self.stopped, self.lost = threading.Event(), threading.Event()

    def __enter__(self) -> "KeepAlive":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.join(timeout=BEAT.total_seconds() * 2)

    def run(self) -> None:
        try:
            while not self.stopped.wait(BEAT.total_seconds()):
                try:
                    if not self.seat.keep(self.ticket, timezone.now()):
                        logger.warning("%s was given to another task", self.seat)
                        self.lost.set()
                        return
                except DATABASE_ERRORS as error:
                    logger.warning("%s not renewed (%s); trying at the next beat", self.seat, error)
                    connections.close_all()
        finally:
            connections.close_all()


def queue_for(seat: DispatchSeat, ticket: str, run_after: datetime | None = None) -> bool:
    """Queue a new task for `seat`, if its ticket is still `ticket` (so of two hands that found
    it dead at once, one queues). The task and the seat's new ticket commit together."""
    fresh = uuid.uuid4().hex
    with transaction.atomic():
        if not DispatchSeat.objects.select_for_update().filter(pk=seat.pk, ticket=ticket).exists():
            return False
        sending = dispatch_campaign.using(run_after=run_after) if run_after else dispatch_campaign
        result = sending.enqueue(seat.campaign_id, seat.number, fresh)
        DispatchSeat.objects.filter(pk=seat.pk).update(
            ticket=fresh, task_id=result.id, queued_at=timezone.now(), held_until=None
        )
    return True


def is_alive(seat: DispatchSeat, now: datetime) -> bool:
    """Held under a lease not run out, or queued and still waiting in the queue (a task taken
    from the queue that never took its seat died before it began)."""
    if seat.held_until is not None:
        return seat.held_until >= now
    if now - seat.queued_at < STALE:
        return True
    try:
        return dispatch_campaign.get_result(seat.task_id).status == TaskResultStatus.READY
    except TaskResultDoesNotExist:
        return False


def start_dispatchers(campaign: Campaign, now: datetime | None = None) -> int:
    """Give the running campaign its OBD_CAMPAIGN_DISPATCHERS seats, each with a live task:
    seats missing or dead get a new one, live ones are left alone (so starting twice, or
    resuming while the old tasks still run, adds none). How many tasks were queued."""
    now = now or timezone.now()
    queued = 0
    for number in range(settings.OBD_CAMPAIGN_DISPATCHERS):
        seat, made = DispatchSeat.objects.get_or_create(
            campaign=campaign, number=number, defaults={"queued_at": now}
        )
        if (made or not is_alive(seat, now)) and queue_for(seat, seat.ticket):
            queued += 1
    return queued


def keep_campaigns_dispatched(now: datetime) -> int:
    """The sweeper's part: every running campaign keeps its dispatch going. A dead seat beside a
    live one gets a new task; a campaign with none alive is finished when nothing is left to
    send, else given its seats again. Seats of campaigns that ended are dropped. How many
    tasks were queued."""
    queued = 0
    for campaign in Campaign.objects.filter(status=Campaign.Status.RUNNING):
        seats = list(campaign.seats.all())
        dead = [seat for seat in seats if not is_alive(seat, now)]
        if len(dead) < len(seats):
            fresh = sum(queue_for(seat, seat.ticket) for seat in dead)
        elif campaign.finish_if_done():
            continue
        else:
            fresh = start_dispatchers(campaign, now)
        if fresh:
            logger.warning(
                "campaign=%s had lost dispatch tasks: %s queued again", campaign.pk, fresh
            )
        queued += fresh
    DispatchSeat.objects.filter(campaign__status__in=CAMPAIGN_ENDED).delete()
    return queued
