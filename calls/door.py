"""The provider's door: authenticate first, read the body whole (chunked too) within its cap,
store it, answer. Verification challenges are answered here and never become outcomes."""

import hmac
import logging
from functools import partial
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from calls.http import id_in
from calls.models import CallEvent
from calls.webhooks import MalformedDelivery, parse_delivery

logger = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    pass


class LengthRequired(Exception):
    pass


@csrf_exempt
@login_not_required
@require_http_methods(["GET", "POST", "PUT"])
def mobtexting_webhook(request: HttpRequest) -> HttpResponse:
    """Answers in milliseconds: any 2xx tells the provider the delivery arrived."""
    if not _authorized(request):
        logger.warning("webhook refused: missing or wrong secret from %s", _client(request))
        return JsonResponse({"error": "unauthorized"}, status=401)
    try:
        body = read_body(request, settings.OBD_WEBHOOK_MAX_BODY)
    except BodyTooLarge:
        logger.warning("webhook refused: body over %s bytes", settings.OBD_WEBHOOK_MAX_BODY)
        return JsonResponse({"error": "body too large"}, status=413)
    except LengthRequired:
        return JsonResponse({"error": "send a Content-Length"}, status=411)
    # The verification token is ours, not the delivery's: never stored, never logged.
    fields = parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True)
    token = next((value for name, value in fields if name == "token"), None)
    query = urlencode([(name, value) for name, value in fields if name != "token"])
    content_type = request.META.get("CONTENT_TYPE", "")
    challenge = _challenge_in(body, content_type)
    if token is not None or challenge:
        return _answer_challenge(token, challenge)
    # Stored in one statement and answered: the deliveries worker parses, matches and applies.
    event = _store(method=request.method or "", body=body, content_type=content_type, query=query)
    logger.debug("webhook stored event=%s", event)  # the worker logs it when applied
    # Any 2xx tells the provider the delivery arrived; 202: it is applied in a moment. The
    # JSON JsonResponse would write, without its encoder's set-up for one number.
    return HttpResponse(b'{"event": %d}' % event, content_type="application/json", status=202)


def _store(*, method: str, body: bytes, content_type: str, query: str) -> int:
    """The delivery's one INSERT, without Django's check of the connection first (a `SELECT 1`
    before each request's first query: a second round trip for every delivery). A connection
    the database dropped (a restart) fails the INSERT instead, and it is made once more on a new
    connection. It is keyed by the delivery itself: should the first have landed after all, the
    second only counts it delivered once more."""
    # Django's own mark of a connection checked this request (not in django-stubs).
    connection.health_check_done = True  # type: ignore[attr-defined]
    store = partial(
        CallEvent.objects.store,
        source=CallEvent.Source.WEBHOOK,
        method=method,
        body=body,
        content_type=content_type,
        query=query,
    )
    try:
        return store()
    except DatabaseError as exc:
        if connection.in_atomic_block:
            raise
        # Most likely a connection the database dropped; anything else fails again, and answers 500.
        # The error's name only: a database's message may quote the values it was given.
        logger.warning(
            "webhook store failed (%s); storing once more, on a new connection",
            type(exc).__name__,
        )
        connection.close()
        return store()


def _authorized(request: HttpRequest) -> bool:
    secret = settings.OBD_WEBHOOK_SECRET
    if not secret:
        return bool(settings.OBD_SANDBOX)  # an unprotected door is only acceptable offline
    # META, not `request.headers`: that builds a dict of every header, for one.
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), secret.encode())


def _client(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", "-"))


def _challenge_in(body: bytes, content_type: str) -> str:
    if b"challenge" not in body:
        return ""  # the common case, without parsing twice
    try:
        delivery = parse_delivery(content_type=content_type or "application/json", body=body)
    except MalformedDelivery:
        return ""
    return delivery.challenge


def _answer_challenge(token: str | None, challenge: str) -> JsonResponse:
    """The provider checks a new webhook by sending `?token=` and a challenge to echo. The
    secret was checked already; the token, when one is configured, must match too."""
    expected = settings.OBD_WEBHOOK_VERIFICATION_TOKEN
    if expected and not hmac.compare_digest((token or "").encode(), expected.encode()):
        logger.warning("webhook verification refused: wrong token")
        return JsonResponse({"error": "wrong verification token"}, status=403)
    if not challenge:
        return JsonResponse({"error": "no challenge in the verification request"}, status=400)
    logger.info("webhook verification answered")
    return JsonResponse({"challenge": challenge})


def read_body(request: HttpRequest, limit: int) -> bytes:
    """The whole body, at most `limit` bytes (else BodyTooLarge). A chunked body has no
    Content-Length: only a server that decodes the chunks and says so (`wsgi.input_terminated`,
    as gunicorn does) lets it be read through the WSGI stream; otherwise LengthRequired."""
    declared = id_in(request.META.get("CONTENT_LENGTH"))
    if declared is not None and declared > limit:
        raise BodyTooLarge
    if "chunked" not in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        if len(request.body) > limit:
            raise BodyTooLarge
        return request.body
    if not request.META.get("wsgi.input_terminated"):
        # runserver hands over a stream limited to Content-Length (none here) and no public way
        # to the chunks beneath it: the sender is asked for a length instead of being misread.
        raise LengthRequired
    body = request.META["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        raise BodyTooLarge
    return bytes(body)
