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
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from calls.callbacks.transport import Answer, post
from calls.models import CallbackAttempt, CallbackDelivery, CallbackEndpoint, Notice
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
# Deliveries one endpoint is sent in a round (one thread, one after another), and rounds a run.
A_ROUND = 10
ROUND_BUDGET_SECONDS = 20.0
SENDERS = 8


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


def _send_queue(queue: list[tuple[CallbackDelivery, bytes, dict[str, str]]]) -> list[Answer]:
    """One endpoint's round, in order; it stops at the first failure (the rest wait their turn:
    a down or slow receiver is not waited on again in this round)."""
    answers: list[Answer] = []
    for delivery, body, headers in queue:
        answer = post(delivery.endpoint.url, body, headers)
        answers.append(answer)
        if not answer.delivered:
            break
    return answers


def send_due() -> dict[str, int]:
    """Send what is due, round after round, until nothing is or the run's budget is spent."""
    started = time.monotonic()
    totals: dict[str, int] = defaultdict(int)
    with ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="callbacks") as senders:
        while time.monotonic() - started < ROUND_BUDGET_SECONDS:
            if not _round(senders, timezone.now(), totals):
                break
    totals["disabled"] = disable_failing(timezone.now())
    totals["waiting"] = CallbackDelivery.objects.due(timezone.now()).count()
    return dict(totals)


def _round(senders: ThreadPoolExecutor, now: datetime, totals: dict[str, int]) -> int:
    by_endpoint: defaultdict[int, list[CallbackDelivery]] = defaultdict(list)
    for delivery in CallbackDelivery.objects.due(now).select_related("event", "endpoint")[:500]:
        if len(by_endpoint[delivery.endpoint_id]) < A_ROUND:
            by_endpoint[delivery.endpoint_id].append(delivery)
    queues = {
        endpoint_id: [
            (d, body, signed_headers(d, body, now)) for d in due for body in [d.event.body()]
        ]
        for endpoint_id, due in by_endpoint.items()
    }
    futures = {pk: senders.submit(_send_queue, queue) for pk, queue in queues.items()}
    attempted = 0
    for pk, future in futures.items():
        for delivery, answer in zip(by_endpoint[pk], future.result(), strict=False):
            record_attempt(delivery, answer, timezone.now())
            totals["delivered" if answer.delivered else "failed"] += 1
            attempted += 1
    return attempted


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
