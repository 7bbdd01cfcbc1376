"""Every API error as RFC 9457 problem details (`application/problem+json`): a title, the
status, a sentence saying what to do, and each field's error in the pages' own words."""

import json
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

PROBLEM_JSON = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    411: "Length required",
    413: "Body too large",
    422: "Not valid",
    429: "Too many requests",
    500: "Server error",
}


# The problems any operation may answer (no key, no scope, a parameter that cannot be read, too
# many requests), and those a POST may add (an unreadable body, a key in flight, a chunked body,
# a body too big).
READ_REFUSED = frozenset({401, 403, 422, 429})
WRITE_REFUSED = READ_REFUSED | {400, 409, 411, 413}


class FieldError(Schema):
    field: str | None  # dotted path in the body (`variables.OTP`); null: the request as a whole
    message: str


class ProblemOut(Schema):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] = []


class Problem(Exception):
    """Raised anywhere in an operation: answered as problem details."""

    def __init__(
        self, status: int, detail: str, errors: list[FieldError] | None = None, **headers: str
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors or [], headers


def problem_response(problem: Problem) -> HttpResponse:
    body = ProblemOut(
        title=TITLES.get(problem.status, "Error"),
        status=problem.status,
        detail=problem.detail,
        errors=problem.errors,
    )
    response = HttpResponse(
        json.dumps(body.model_dump()), status=problem.status, content_type=PROBLEM_JSON
    )
    for name, value in problem.headers.items():
        response[name.replace("_", "-")] = value
    return response


def form_problem(form: forms.BaseForm, fields: dict[str, str] | None = None) -> Problem:
    """The form's errors, each under the body's name for its field (`fields` renames)."""
    errors = [
        FieldError(
            field=None if name == NON_FIELD_ERRORS else (fields or {}).get(name, name),
            message=str(message),
        )
        for name, messages in form.errors.items()
        for message in messages
    ]
    return Problem(422, "The request has errors: see each field's message.", errors)


def _location(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """A field's dotted path in the body (`variables.OTP`), or a parameter's name: ninja says
    where a value came from first (body, query, path), then, in a body, the parameter's name."""
    parts = [str(part) for part in loc[1:]]
    if loc and loc[0] == "body" and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or None


def install(api: Any) -> None:
    """Answer ninja's own errors (unreadable JSON, a wrong type, a missing key) as problems."""

    @api.exception_handler(Problem)  # type: ignore[untyped-decorator]
    def _problem(request: HttpRequest, exc: Problem) -> HttpResponse:
        return problem_response(exc)

    @api.exception_handler(ValidationError)  # type: ignore[untyped-decorator]
    def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = [
            FieldError(field=_location(error.get("loc", ())), message=str(error.get("msg", "")))
            for error in exc.errors
        ]
        return problem_response(
            Problem(422, "The request has errors: see each field's message.", errors)
        )

    @api.exception_handler(AuthenticationError)  # type: ignore[untyped-decorator]
    def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return problem_response(
            Problem(401, "Send an API key: Authorization: Bearer obd_….", WWW_Authenticate="Bearer")
        )

    @api.exception_handler(HttpError)  # type: ignore[untyped-decorator]
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return problem_response(Problem(exc.status_code, str(exc)))
