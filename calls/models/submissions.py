"""A call's submissions: its POST's answer recorded (`record_submission`, for CallLog's method of
that name), and what each earlier try at sending it came to, kept when it is retried."""

import logging
from contextlib import nullcontext
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import models, transaction
from django.utils import timezone

from calls.models.bulk import update_where
from calls.models.life import Mover, allowed_from
from calls.models.outbox import record_submission_settled
from calls.provider.base import SendResult
from calls.sealing import masked_echo
from calls.vocabulary import NEVER_RANG, NOT_ACCEPTED, CallStatus, provider_key

if TYPE_CHECKING:
    from calls.models.calls import CallLog

logger = logging.getLogger(__name__)
# An answer stored this long after its POST began is late: it queues again itself the deliveries
# that came before it. Sooner, the engine does (`CallEventQuerySet.queue_again_learned`), which
# spares every send a statement: the provider is rarely that quick.
ANSWER_LATE = timedelta(minutes=5)


def record_submission(
    call: "CallLog", result: SendResult, sent: dict[str, str], *, may_retry: bool = False
) -> None:
    """Store the gateway's answer, by compare-and-set (else under the row lock). An outcome
    that arrived while the POST was waiting wins: the answer then adds what it knows (id,
    cost) and changes no status.
    `sent`: the variables in clear, so a provider echoing them is stored masked.
    `may_retry`: a retry may follow an accepted call, so its sealed secrets are kept."""
    secrets = _secrets(call, sent)
    fields: dict[str, object] = {
        "http_status": result.http_status,
        "response_body": masked_echo(result.body, secrets),
        "cost": result.cost,
        "provider_created_at": result.created_at,
    }
    if not (may_retry and result.status == CallStatus.QUEUED):
        fields["sealed_variables"] = ""  # sent (or refused): the secrets are no longer needed
    learned: dict[str, str] = {}
    if result.provider_id:
        learned = {
            "provider_id": result.provider_id,
            "provider_key": provider_key(result.provider_id),
        }
    answer: dict[str, object] = {
        "status": result.status,
        "provider_status": result.provider_status,
        # The provider's message may quote what it was sent (it is shown and logged).
        "error": masked_echo(result.error, secrets),
    }
    # Most answers find the row as this send left it (submitted_at is the send's own mark,
    # no outcome, no id): one compare-and-set writes them, in a transaction only when the
    # outbox must tell of it too. Else the row is read under its lock to see what to keep.
    as_left = {
        "id": call.pk,
        "submitted_at": call.submitted_at,
        "status": allowed_from(Mover.SUBMISSION, result.status),
        "provider_id": "",
    }
    with transaction.atomic() if result.status in NEVER_RANG else nullcontext():
        if update_where(type(call), as_left, fields | learned | answer):
            fields |= learned | answer
            record_submission_settled(call, fields)
        else:
            fields = _record_under_lock(call, result, fields, learned, answer)
    began = call.submitted_at
    if "provider_key" in fields and (began is None or timezone.now() - began > ANSWER_LATE):
        # After the commit, so that it sees what a worker committed meanwhile.
        call.events.model.objects.queue_again_learned(keys=[str(fields["provider_key"])])
    for name, value in fields.items():
        setattr(call, name, value)
    if "status" not in fields:
        call.refresh_from_db(fields=["status", "provider_id", "provider_key"])
    # One line per submission; failures at warning level with the reason (never a secret).
    failed = call.status in NOT_ACCEPTED
    logger.log(
        logging.WARNING if failed else logging.INFO,
        "call submission call=%s campaign=%s status=%s http=%s provider_id=%s%s",
        call.pk,
        call.campaign_id or "-",
        call.status,
        call.http_status or "-",
        call.provider_id or "-",
        f" reason={call.error!r}" if failed else "",
    )


def _record_under_lock(
    call: "CallLog",
    result: SendResult,
    fields: dict[str, object],
    learned: dict[str, str],
    answer: dict[str, object],
) -> dict[str, object]:
    """The answer onto a row that moved on: the id if it has none, the status only onto the
    row as this send left it (not onto an outcome that came meanwhile, nor another send's)."""
    with transaction.atomic():
        now = (
            type(call)
            .objects.select_for_update()
            .only("status", "provider_id", "submitted_at")
            .get(pk=call.pk)
        )
        if not now.provider_id:
            fields |= learned
        ours = now.submitted_at == call.submitted_at
        if ours and now.status in allowed_from(Mover.SUBMISSION, result.status):
            fields |= answer
        else:
            logger.info(
                "call submission answer kept out call=%s status=%s answer=%s",
                call.pk,
                now.status,
                result.status,
            )
        type(call).objects.filter(pk=call.pk).update(**fields)
        record_submission_settled(call, fields)
    return fields


def _secrets(call: "CallLog", sent: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in sent.items() if call.flow and call.flow.is_sensitive(k)}


class FailedSubmission(models.Model):
    """One try at sending a call that never reached the provider (status `error`). A retry
    reuses the call's row, so the try it replaces is kept here for the call's timeline."""

    call = models.ForeignKey("CallLog", on_delete=models.CASCADE, related_name="failed_submissions")
    submitted_at = models.DateTimeField(null=True, blank=True, help_text="When the POST began.")
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["submitted_at", "id"]

    def __str__(self) -> str:
        return f"Failed submission of call #{self.call_id}"
