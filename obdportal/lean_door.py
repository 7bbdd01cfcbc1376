"""The provider's webhook door, served before the browser's middleware.

A machine posting a delivery has no session, no login, no CSRF token, no messages, no time-zone
preference and renders no HTML, yet each of those middlewares costs it time on every delivery.
This middleware sits right after SecurityMiddleware (HTTPS redirect, HSTS, nosniff, referrer
and opener policies still apply) and hands the door's exact path straight to the door's view;
every other path goes on through the whole browser stack. The view keeps its own checks (the
secret in constant time, body caps, chunked bodies, the challenge), and Django's handler still
turns an exception into a 500 and logs it, as for any view.

The door is found by its URL name, so its path and view are written once, in calls/urls.py."""

from collections.abc import Callable
from functools import cached_property

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import NoReverseMatch, resolve, reverse

DOOR_URL_NAME = "calls:webhook"


class LeanDoorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    @cached_property
    def door(self) -> tuple[str, Callable[[HttpRequest], HttpResponseBase]] | None:
        """The door's path and view, looked up on first use (the URLconf is ready by then);
        None under a URLconf without the door (a test's or a benchmark's)."""
        try:
            path = reverse(DOOR_URL_NAME)
        except NoReverseMatch:
            return None
        return path, resolve(path).func

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if self.door is None or request.path_info != self.door[0]:
            return self.get_response(request)
        response = self.door[1](request)
        # As CommonMiddleware would: a sized answer, not a chunked one, for the provider's client.
        if isinstance(response, HttpResponse) and "Content-Length" not in response.headers:
            response.headers["Content-Length"] = str(len(response.content))
        return response
