"""`Idempotency-Key` on POSTs, with Stripe's rules, scoped to the API key that sends it:

- the same key with the same request (method, path, body) gets the first answer again, status
  and body, marked `Idempotent-Replayed: true`;
- the same key with another request is refused (422), and while the first request is still
  being answered a retry gets 409;
- a request the API refused as not valid (422) or failed on (5xx) keeps no answer: fixed, it
  may be sent again with the same key;
- keys are kept OBD_API_IDEMPOTENCY_HOURS (24), then purged by the engine (`api_records` job).

The key is claimed by one INSERT … ON CONFLICT DO NOTHING, committed before the work begins: of two identical requests at
the same instant, the unique constraint lets exactly one through. The work and the answer kept
for it then commit in one transaction."""

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from calls.api.problems import Problem, problem_response
from calls.models import ApiKey, IdempotentRequest

# A request whose process died keeps its key "in flight" this long; then a retry takes over its
# claim (and finds what it did through it, e.g. the call stored under it).
ABANDONED_AFTER = timedelta(minutes=5)
KEY_MAX = 255
# Answers not kept: the request was not valid, or failed on our side; retrying it is safe.
NOT_KEPT = frozenset({422})


def fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    for part in (request.method or "", request.get_full_path(), ""):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(request.body)
    return digest.hexdigest()


def answer_once(
    request: HttpRequest, api_key: ApiKey, answer: Callable[[], HttpResponse]
) -> HttpResponse:
    key = request.headers["Idempotency-Key"]
    if not 0 < len(key) <= KEY_MAX or not key.isprintable() or not key.isascii():
        return problem_response(
            Problem(400, f"An Idempotency-Key is 1 to {KEY_MAX} printable ASCII characters.")
        )
    printed = fingerprint(request)
    claimed = _claim(api_key, key, printed)
    if isinstance(claimed, HttpResponse):
        return claimed
    request.idempotent_request = claimed.pk  # type: ignore[attr-defined]  # see claim_of
    try:
        # The work and its kept answer commit together: one is never there without the other.
        with transaction.atomic():
            response = answer()
            kept = IdempotentRequest.objects.filter(pk=claimed.pk)
            if response.status_code >= 500 or response.status_code in NOT_KEPT:
                kept.delete()
            else:
                kept.update(
                    response_status=response.status_code,
                    body=response.content,
                    content_type=response.get("Content-Type", ""),
                )
    except BaseException:
        claimed.delete()
        raise
    return response


def claim_of(request: HttpRequest) -> int | None:
    """The claim this request holds on its Idempotency-Key, if it sent one: the work it does
    may be named by it (a call's own key), so a retry taking over an abandoned claim finds it."""
    claim: int | None = getattr(request, "idempotent_request", None)
    return claim


def _claim(api_key: ApiKey, key: str, printed: str) -> IdempotentRequest | HttpResponse:
    """This request's claim on the key, or the answer a retry gets."""
    now = timezone.now()
    claimed = _insert_claim(api_key, key, printed, now)
    if claimed is not None:
        return claimed
    first = IdempotentRequest.objects.filter(api_key=api_key, key=key).first()
    expired = now - timedelta(hours=settings.OBD_API_IDEMPOTENCY_HOURS)
    if first is None or first.created_at < expired:
        # Gone meanwhile, or past its keeping time: a new request, claimed by one.
        if first is not None:
            IdempotentRequest.objects.filter(pk=first.pk, created_at=first.created_at).delete()
        return _claim_again(api_key, key, printed)
    if first.fingerprint != printed:
        return problem_response(
            Problem(
                422,
                "This Idempotency-Key was used for another request (another path or body): "
                "use a new key for a new request.",
            )
        )
    if first.response_status is None:
        # Its process died: the same claim is taken over (by one retry), so what the first
        # did under it (the call stored under the claim) is found again, not done twice.
        abandoned = first.created_at < now - ABANDONED_AFTER
        if abandoned and IdempotentRequest.objects.filter(
            pk=first.pk, response_status=None, created_at=first.created_at
        ).update(created_at=now):
            return first
        return problem_response(
            Problem(409, "A request with this Idempotency-Key is still being answered: retry soon.")
        )
    replay = HttpResponse(
        bytes(first.body), status=first.response_status, content_type=first.content_type
    )
    replay["Idempotent-Replayed"] = "true"
    return replay


def _claim_again(api_key: ApiKey, key: str, printed: str) -> IdempotentRequest | HttpResponse:
    claimed = _insert_claim(api_key, key, printed, timezone.now())
    if claimed is None:  # another retry claimed it first
        return problem_response(
            Problem(409, "A request with this Idempotency-Key is still being answered: retry soon.")
        )
    return claimed


def _insert_claim(
    api_key: ApiKey, key: str, printed: str, now: datetime
) -> IdempotentRequest | None:
    """Claim the key in one statement (committed at once: the work's transaction opens after),
    or None if it is already claimed. ON CONFLICT, not a caught IntegrityError: no BEGIN,
    savepoint and COMMIT around it, three round trips fewer on every POST."""
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO calls_idempotentrequest (api_key_id, "key", fingerprint, body, '
            "content_type, created_at) VALUES (%s, %s, %s, %s, '', %s) "
            'ON CONFLICT (api_key_id, "key") DO NOTHING RETURNING id',
            [api_key.pk, key, printed, b"", connection.ops.adapt_datetimefield_value(now)],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return IdempotentRequest(
        pk=row[0], api_key=api_key, key=key, fingerprint=printed, body=b"", created_at=now
    )
