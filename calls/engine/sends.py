"""Sending a call. One send sequence serves every sender (a call placed from the form, a retry, a
call placed for later, a campaign's dispatcher); a single call is sent by a worker's task, which
a request queues and never waits for.

The sequence: `begin_sending` (a compare-and-set, so one process alone sends a call), the POST
through the gateway, then `record_submission` (under the row lock, and only onto the row as
this send left it: an outcome that arrived while the POST waited wins). A POST is never made
twice: a process killed after `begin_sending` leaves the call to the sweeper, which makes it
`unknown` for a status look-up to settle."""

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.db import transaction
from django.tasks import task
from django.utils import timezone

from calls.models import CallLog
from calls.provider.base import Gateway, SendResult
from calls.provider.configured import get_gateway
from calls.vocabulary import CallStatus

logger = logging.getLogger(__name__)
# A person waits for this answer: a send goes before other work waiting in the queue.
SEND_PRIORITY = 50


@dataclass(frozen=True)
class Sent:
    """What one run of the send sequence did."""

    result: SendResult
    asked: bool  # the gateway was asked; False when the row failed first (secrets unreadable)

    @property
    def provider_silent(self) -> bool:
        """No usable answer from the provider: unreachable, timed out, or failed with a 5xx."""
        http_status = self.result.http_status
        return self.asked and (http_status is None or http_status >= 500)


def send(
    call: CallLog,
    gateway: Gateway,
    *,
    now: datetime | None = None,
    may_retry: bool = False,
    hold_if_rate_limited: bool = False,
    campaign_running: bool = False,
) -> Sent | None:
    """Send one pending call once and record what became of it; None when it is not this
    process's to send (another one began it, it was withdrawn, or its lease moved on).

    `may_retry`: a retry may follow, so an accepted call keeps its sealed secrets.
    `hold_if_rate_limited`: a 429 (refused before it was placed) is not recorded: the caller
    puts the row back in its queue and waits as the provider asked.
    `campaign_running`: sent only while its campaign runs (see `CallLog.begin_sending`)."""
    try:
        variables = call.variables_in_clear()
    except ValueError as exc:  # sealed under a key this portal no longer has
        result = SendResult(status=CallStatus.ERROR, error=str(exc))
        call.record_submission(result, {})
        return Sent(result, asked=False)
    if not call.begin_sending(now, campaign_running=campaign_running):
        return None
    result = gateway.send(call.provider_payload(variables))
    if not (hold_if_rate_limited and result.http_status == 429):
        call.record_submission(result, variables, may_retry=may_retry)
    return Sent(result, asked=True)


@task(priority=SEND_PRIORITY)
def send_call(call_id: int) -> str:
    """A worker sends one call a person asked for: placed from the form, come to the time it
    was placed for, or retried (a campaign's rows otherwise go at its pace, by its dispatchers).
    Run twice (a duplicate, the sweep's second task), it still sends once."""
    call = CallLog.objects.select_related("bridge", "flow", "audio").filter(pk=call_id).first()
    if call is None:
        return "no such call"
    # Not asked whether it is due: the queue holds a call placed for later until its time, and
    # this worker's clock may be a little behind the one that placed it (another machine).
    sent = send(call, get_gateway())
    if sent is None:
        logger.info("call=%s already sent or withdrawn: not sent again", call_id)
        return "not ours"
    return call.status


def queue_send(call: CallLog) -> None:
    """Have a worker send `call` once the caller's transaction commits, or at the time it was
    placed for. The request that placed it answers at once. Should the task be lost (a worker
    killed before it began), the schedule's sweep queues the call again (schedules.py)."""
    later = call.not_before if call.not_before and call.not_before > timezone.now() else None
    sending = send_call.using(run_after=later) if later else send_call
    # Robust: a queue that cannot be written now is logged; the call waits for the sweep.
    transaction.on_commit(partial(sending.enqueue, call.pk), robust=True)
