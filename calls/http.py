"""The request types the views are annotated with, and reading an id a request carries."""

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request that went through django-htmx's middleware, typed as django-htmx documents."""

    htmx: HtmxDetails


class AuthenticatedHttpRequest(HtmxHttpRequest):
    """A portal page's request: LoginRequiredMiddleware lets only a signed-in user through, so
    `request.user` is a User, never AnonymousUser (django-stubs' documented pattern)."""

    user: User


def id_in(value: object) -> int | None:
    """A positive whole number written in ASCII digits, else None. `str.isdigit` also accepts
    digits such as `²`, which `int()` then refuses: a query string must never make a 500."""
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() else None
