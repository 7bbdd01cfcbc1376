"""The API's one NinjaAPI, its operations, and its URLs: every operation behind the door
(keys.py); the schema and its docs page open to all."""

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, re_path
from ninja import NinjaAPI
from ninja.openapi.schema import OpenAPISchema

from calls.api import calls, campaigns, catalogue, optouts
from calls.api.keys import door
from calls.api.problems import PROBLEM_JSON, Problem, install, problem_response

DESCRIPTION = """Place calls and read what became of them, from the systems beside the portal.

Authenticate with `Authorization: Bearer obd_…` (a key an administrator creates in the admin,
with scopes such as `calls:write`). Send an `Idempotency-Key` header on every POST: a retry with
the same key and body gets the first answer again. Errors are RFC 9457 problem details."""


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Any unique string (a UUID): a retry with the same key and body gets the "
    "first answer again, for 24 hours; another body with it is refused.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


class PortalApi(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        """Errors are declared as what they are (`application/problem+json`); every POST
        takes an `Idempotency-Key`."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema.get("paths", {}).values():
            for method, operation in operations.items():
                if method == "post":
                    operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        return schema


api = PortalApi(
    title="OBD Portal API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
)
install(api)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problem_response(Problem(404, "Nothing is at this address."))


api.add_router("", calls.router)
api.add_router("", campaigns.router)
api.add_router("", catalogue.router)
api.add_router("", optouts.router)


def urlpatterns() -> list[URLPattern | URLResolver]:
    patterns, _, _ = api.urls
    for pattern in patterns:
        assert isinstance(pattern, URLPattern)
        if pattern.name in ("openapi-json", "openapi-view"):
            login_not_required(pattern.callback)
        else:
            pattern.callback = door(pattern.callback)
    # Any other address under the API is a problem too, not the site's HTML page.
    return [*patterns, re_path(r"", _nowhere)]


@login_not_required
def _nowhere(request: HttpRequest) -> HttpResponse:
    return problem_response(Problem(404, "Nothing is at this address: see /api/v1/docs."))
