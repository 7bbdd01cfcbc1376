"""The periodic jobs: the one schedule the engine runs (calls/engine/clock.py), each job's name,
how often it runs (read from the settings at each run) and what it does. No job queues itself:
the engine sets each next run from here when the last one ends."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from calls.callbacks.delivery import send_due
from calls.engine.dispatch import start_dispatchers
from calls.engine.sweeper import sweep_abandoned_work
from calls.keypresses import fetch_keypresses
from calls.models import Campaign
from calls.models.api import purge_api_records
from calls.models.retries import schedule_retries, wipe_ended_campaigns_secrets
from calls.notifications import check_notices
from calls.optouts import sync_optouts
from calls.provider.configured import get_gateway
from calls.reconcile import reconcile_waiting
from calls.rollups import FOLD_EVERY, fold_tallies
from calls.schedules import queue_overdue_calls
from calls.vocabulary import CAMPAIGN_UNDER_WAY

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ran:
    """What a run did (kept on the schedule for operators) and, when the job knows better than
    its interval, how soon to run again."""

    summary: dict[str, int]
    again_in: timedelta | None = None


@dataclass(frozen=True)
class Job:
    name: str
    every: Callable[[], timedelta]
    run: Callable[[], Ran]


def run_schedules() -> Ran:
    """Scheduled work come due: campaigns to start or to end, retries to make (dispatchers make
    them too; this covers paused campaigns and dispatchers between runs), single calls whose
    send task was lost."""
    now = timezone.now()
    begun = ended = retries = 0
    for campaign in Campaign.objects.filter(status__in=CAMPAIGN_UNDER_WAY):
        if campaign.end_if_past(now):
            ended += 1
        elif campaign.begin_if_due(now):
            start_dispatchers(campaign)
            begun += 1
        elif campaign.status != Campaign.Status.SCHEDULED:
            retries += schedule_retries(campaign, now)
    wipe_ended_campaigns_secrets()
    queued = queue_overdue_calls(now)
    return Ran({"begun": begun, "ended": ended, "retries": retries, "calls": queued})


def look_up_keypresses() -> Ran:
    """The keys pressed on answered flow calls, a batch a run: back at the look-ups' pace while
    more wait, when the provider said after a 429, else after the interval."""
    run = fetch_keypresses(get_gateway())
    for problem in run.problems:
        logger.warning("keypress look-up failed: %s", problem)
    again_in = None
    if run.wait is not None:
        again_in = timedelta(seconds=run.wait)
    elif run.more:
        again_in = timedelta(seconds=60 / settings.OBD_KEYPRESS_LOOKUPS_PER_MINUTE)
    summary = {"looked_up": run.looked_up, "stored": run.stored, "failed": run.failed}
    return Ran(summary, again_in)


def send_callbacks() -> Ran:
    """Signed callbacks due to other systems; back in a second while more are due (the run's
    budget ran out first)."""
    summary = send_due()
    return Ran(summary, timedelta(seconds=1) if summary["waiting"] else None)


def seconds(name: str) -> Callable[[], timedelta]:
    return lambda: timedelta(seconds=getattr(settings, name))


def minutes(name: str) -> Callable[[], timedelta]:
    return lambda: timedelta(minutes=getattr(settings, name))


JOBS = (
    Job("sweep", seconds("OBD_SWEEP_EVERY_SECONDS"), lambda: Ran(sweep_abandoned_work())),
    Job("schedules", seconds("OBD_SCHEDULE_EVERY_SECONDS"), run_schedules),
    Job(
        "reconcile",
        minutes("OBD_RECONCILE_EVERY_MINUTES"),
        lambda: Ran({"settled": reconcile_waiting(settings.OBD_RECONCILE_AFTER_MINUTES)}),
    ),
    Job("keypresses", minutes("OBD_KEYPRESS_EVERY_MINUTES"), look_up_keypresses),
    Job("optouts", minutes("OBD_OPTOUT_SYNC_EVERY_MINUTES"), lambda: Ran(sync_optouts())),
    Job(
        "notices",
        seconds("OBD_NOTICE_CHECK_EVERY_SECONDS"),
        lambda: Ran({"posted": check_notices()}),
    ),
    Job("tallies", lambda: FOLD_EVERY, lambda: Ran({"folded": fold_tallies()})),
    # Idempotency keys are kept 24 hours (Stripe's rule), rate windows a minute.
    Job(
        "api_records",
        minutes("OBD_API_PURGE_EVERY_MINUTES"),
        lambda: Ran(purge_api_records(timezone.now())),
    ),
    Job("callbacks", seconds("OBD_CALLBACK_EVERY_SECONDS"), send_callbacks),
)
