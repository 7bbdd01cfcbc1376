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


# Digits an id may have: any 18 fit a 64-bit integer column (and stay far from int()'s limit of
# 4,300, past which it raises).
ID_DIGITS = 18


def id_in(value: object) -> int | None:
    """A positive whole number written in ASCII digits, else None. `str.isdigit` also accepts
    digits such as `²`, which `int()` then refuses: a query string must never make a 500."""
    text = str(value or "")
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > ID_DIGITS:
        return None
    return int(text)
