"""The API's door: a bearer key read from the database on every request (a revoked key is
refused at once), each key's rate limit, the body size cap, and the scope each operation needs.
The browser's session and CSRF play no part: only the `Authorization` header authenticates."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from ninja.security import HttpBearer

from calls.api.idempotency import answer_once
from calls.api.problems import PROBLEM_JSON, Problem, problem_response
from calls.models import ApiKey, RateWindow

View = Callable[..., HttpResponse]


class ApiRequest(HttpRequest):
    """A request the door let in: it carries the key that authenticated it."""

    api_key: ApiKey


def door(view: View) -> View:
    """Wrap one of ninja's path views: authenticate, count, then answer (POSTs once per
    Idempotency-Key)."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            key = _let_in(request)
        except Problem as problem:
            return problem_response(problem)
        request.api_key = key  # type: ignore[attr-defined]
        if request.method == "POST" and "Idempotency-Key" in request.headers:
            return answer_once(request, key, lambda: _as_problem(view(request, *args, **kwargs)))
        if request.method == "HEAD":
            return _headers_only(request, lambda: _as_problem(view(request, *args, **kwargs)))
        return _as_problem(view(request, *args, **kwargs))

    # The door is the API's authentication: no login redirect, no CSRF token (no cookie is read).
    return login_not_required(csrf_exempt(guarded))


def _headers_only(request: HttpRequest, answer: Callable[[], HttpResponse]) -> HttpResponse:
    """HEAD is the GET's answer without its body (RFC 9110, 9.3.2): a monitor or a cache
    asking whether an address answers gets what the GET would say, not a 405."""
    request.method = "GET"
    response = answer()
    response["Content-Length"] = str(len(response.content))
    response.content = b""
    return response


def _as_problem(response: HttpResponse) -> HttpResponse:
    """ninja answers a method an address does not take with Django's bare HTML 405: said as
    the API's other errors are, naming the methods it takes."""
    if response.status_code != 405 or response.get("Content-Type") == PROBLEM_JSON:
        return response
    allowed = response.get("Allow", "")
    return problem_response(Problem(405, f"This address takes {allowed}.", Allow=allowed))


def _let_in(request: HttpRequest) -> ApiKey:
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        # Django reads a body without a length as empty (nginx in deploy/ gives it one).
        raise Problem(411, "Send the body with a Content-Length: a chunked body is not read.")
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > settings.OBD_API_MAX_BODY:
        raise Problem(413, f"A request body may be at most {settings.OBD_API_MAX_BODY} bytes.")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    now = timezone.now()
    key = ApiKey.authenticate(token.strip(), now) if scheme.lower() == "bearer" else None
    if key is None:
        raise Problem(
            401,
            "Send a live API key: Authorization: Bearer obd_…. A revoked or expired key is refused.",
            WWW_Authenticate="Bearer",
        )
    count, left = RateWindow.count_request(key, now)
    if count > settings.OBD_API_REQUESTS_PER_MINUTE:
        raise Problem(
            429,
            f"This key may make {settings.OBD_API_REQUESTS_PER_MINUTE} requests a minute; "
            f"try again in {left} s.",
            Retry_After=str(left),
        )
    return key


class Scope(HttpBearer):
    """The scope an operation needs (e.g. `calls:write`), checked before its body is read; in
    the schema, the bearer key (`bearerAuth`). The door has already checked the key itself."""

    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        key: ApiKey | None = getattr(request, "api_key", None)
        if key is not None and not key.allows(self.scope):
            raise Problem(403, f"This key does not hold the scope {self.scope}.")
        return key


def key_of(request: HttpRequest) -> ApiKey:
    """The key that authenticated the request (set by the door, checked by `Scope`)."""
    key: ApiKey = request.api_key  # type: ignore[attr-defined]
    return key
