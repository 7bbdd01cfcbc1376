"""The request types the views are annotated with (typing only; nothing here runs per request)."""

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
