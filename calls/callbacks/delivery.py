"""The engine's `callbacks` job: send the deliveries that are due, signed as Standard Webhooks
says, and record each attempt.

At least once: a delivery is done only when its endpoint answered 2xx, and every retry and replay
carries the event's one id. A failure is tried again after `BACKOFF` (about 27 hours in all), then
given up and recorded. A call's events reach an endpoint in order: the next one waits until the
earlier one is delivered or given up (`CallbackDeliveryQuerySet.due`).

Endpoints are sent to side by side, each by a thread of its own doing only HTTP (the database is
written by the job's own thread), a few deliveries at a time: a slow or dead receiver costs its
own queue one timeout a round, and the others are not held up behind it. An endpoint whose
deliveries have failed for `OBD_CALLBACK_DISABLE_AFTER_DAYS` is disabled, and every supervisor is
told."""

import logging
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from calls.callbacks.transport import Answer, post
from calls.models import (
    CallbackAttempt,
    CallbackDelivery,
    CallbackEndpoint,
    CallbackEvent,
    Notice,
)
from calls.notifications import tell_supervisors

logger = logging.getLogger(__name__)

# How long after each failed attempt the next one is made; after the last, the delivery is given
# up: 9 attempts over 27.6 hours (the specification's advice is "at least a day").
BACKOFF = (
    timedelta(seconds=5),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
ATTEMPTS = len(BACKOFF) + 1
# Deliveries one sender thread takes of an endpoint's queue at a time; how long a run goes on
# taking up more; how many endpoints are sent to at once.
A_QUEUE = 10
BUDGET_SECONDS = 20.0
SENDERS = 8
# Events every endpoint is done with (delivered or given up) are kept this long for the log.
KEPT = timedelta(days=30)


def signed_headers(delivery: CallbackDelivery, body: bytes, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers; during a rotation's overlap the signature header holds a
    signature by each secret, so a receiver holding either verifies it."""
    event = delivery.event
    signatures = [
        Webhook(secret).sign(event.message_id, now, body)
        for secret in delivery.endpoint.signing_secrets(now)
    ]
    return {
        "webhook-id": event.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


Queue = list[tuple[CallbackDelivery, bytes, dict[str, str]]]


def _send_queue(queue: Queue) -> list[Answer]:
    """A few of one endpoint's deliveries, in order, on a sender thread (HTTP only); it stops at
    the first failure."""
    answers: list[Answer] = []
    for delivery, body, headers in queue:
        answer = post(delivery.endpoint.url, body, headers)
        answers.append(answer)
        if not answer.delivered:
            break
    return answers


def _due_by_endpoint(now: datetime, leave_out: set[int]) -> dict[int, Queue]:
    queues: defaultdict[int, Queue] = defaultdict(list)
    due = CallbackDelivery.objects.due(now).exclude(endpoint_id__in=leave_out)
    for delivery in due.select_related("event", "endpoint")[:500]:
        if len(queues[delivery.endpoint_id]) < A_QUEUE:
            body = delivery.event.body()
            queues[delivery.endpoint_id].append(
                (delivery, body, signed_headers(delivery, body, now))
            )
    return queues


def send_due() -> dict[str, int]:
    """Send what is due until nothing is or the run's budget is spent. Each endpoint's queue is
    taken up again as soon as its last few are answered, whatever the others are doing; an
    endpoint that failed rests until the next run (its deliveries wait out their backoff)."""
    started = time.monotonic()
    totals: dict[str, int] = defaultdict(int)
    sending: dict[Future[list[Answer]], Queue] = {}
    busy: set[int] = set()
    resting: set[int] = set()
    with ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="callbacks") as senders:
        while True:
            if time.monotonic() - started < BUDGET_SECONDS:
                for endpoint_id, queue in _due_by_endpoint(timezone.now(), busy | resting).items():
                    sending[senders.submit(_send_queue, queue)] = queue
                    busy.add(endpoint_id)
            if not sending:
                break
            done, _ = wait(sending, return_when=FIRST_COMPLETED)
            for future in done:
                queue = sending.pop(future)
                for (delivery, _, _), answer in zip(queue, future.result(), strict=False):
                    record_attempt(delivery, answer, timezone.now())
                    totals["delivered" if answer.delivered else "failed"] += 1
                    if not answer.delivered:
                        resting.add(delivery.endpoint_id)
                busy.discard(queue[0][0].endpoint_id)
    totals["disabled"] = disable_failing(timezone.now())
    totals["pruned"] = prune(timezone.now())
    # More waiting for endpoints that answer brings the next run on in a second; a failing
    # endpoint's waits for the interval (it is not knocked on every second).
    due = CallbackDelivery.objects.due(timezone.now()).exclude(endpoint_id__in=resting)
    totals["waiting"] = due.count()
    return dict(totals)


def record_attempt(delivery: CallbackDelivery, answer: Answer, now: datetime) -> None:
    """The attempt in the log, and what follows: done, another try after its backoff, or given
    up. The endpoint's failing streak starts at its first failure and ends with a success."""
    number = delivery.attempts + 1
    fields: dict[str, object] = {
        "attempts": number,
        "last_status_code": answer.status_code,
        "last_error": answer.error,
    }
    if answer.delivered:
        fields |= {"delivered_at": now, "next_attempt_at": None}
    elif number >= ATTEMPTS:
        fields |= {"given_up_at": now, "next_attempt_at": None}
    else:
        fields["next_attempt_at"] = now + BACKOFF[number - 1]
    with transaction.atomic():
        CallbackAttempt.objects.create(
            delivery=delivery,
            number=number,
            attempted_at=now,
            status_code=answer.status_code,
            duration_ms=answer.duration_ms,
            error=answer.error,
        )
        CallbackDelivery.objects.filter(pk=delivery.pk).update(**fields)
        endpoint = CallbackEndpoint.objects.filter(pk=delivery.endpoint_id)
        if answer.delivered:
            endpoint.exclude(failing_since=None).update(failing_since=None)
        else:
            endpoint.filter(failing_since=None).update(failing_since=now)
    logger.log(
        logging.INFO if answer.delivered else logging.WARNING,
        "callback attempt endpoint=%s event=%s attempt=%s status=%s ms=%s%s",
        delivery.endpoint_id,
        delivery.event.message_id,
        number,
        answer.status_code or "-",
        answer.duration_ms,
        f" error={answer.error!r}" if answer.error else "",
    )


def disable_failing(now: datetime) -> int:
    """Disable the endpoints failing for days (compare-and-set: each is disabled and told of
    once) and tell every supervisor."""
    days = settings.OBD_CALLBACK_DISABLE_AFTER_DAYS
    disabled = 0
    for endpoint in CallbackEndpoint.objects.filter(
        enabled=True, failing_since__lte=now - timedelta(days=days)
    ):
        since = f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC"
        reason = f"Every delivery failed for {days} days (since {since})."
        if not CallbackEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
            enabled=False, disabled_at=now, disabled_reason=reason
        ):
            continue
        disabled += 1
        logger.warning("callback endpoint disabled endpoint=%s reason=%r", endpoint.pk, reason)
        tell_supervisors(
            Notice.Kind.CALLBACKS_DISABLED,
            f"{endpoint.pk}-{int(now.timestamp())}",
            f"Callbacks to {endpoint} were turned off: {reason}",
            reverse("admin:calls_callbackendpoint_change", args=[endpoint.pk]),
        )
    return disabled


def prune(now: datetime) -> int:
    """Drop events older than `KEPT` that no endpoint still waits for (their deliveries and
    attempts go with them); how many."""
    waiting = CallbackDelivery.objects.pending().filter(event=OuterRef("pk"))
    old = CallbackEvent.objects.filter(created_at__lt=now - KEPT).exclude(Exists(waiting))
    chosen = list(old.values_list("pk", flat=True)[:1000])
    _, deleted = CallbackEvent.objects.filter(pk__in=chosen).delete()
    return deleted.get(CallbackEvent._meta.label, 0)
