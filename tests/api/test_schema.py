"""The API as a client finds it: Schemathesis reads the served schema (/api/v1/openapi.json)
and sends generated requests, valid and not, to every operation through the WSGI app. No
answer may be a 500, and every answer must match the schema: its status, content type and body."""

from collections.abc import Iterator

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import checks

from calls.models import AudioAsset, DoNotCall
from tests.api.conftest import issue_key

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


# Read through the app as a client reads it (the schema view touches no database).
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@pytest.fixture
def served(db, settings, bridge, otp_flow, sound) -> Iterator[None]:
    settings.OBD_API_REQUESTS_PER_MINUTE = 10_000
    AudioAsset.objects.create(name="By link", url="https://cdn.example.com/a.mp3")
    DoNotCall.objects.create(number="918867135123", reason="asked")
    # As Django's test client does: the test's connection (and its transaction) is kept open
    # across requests instead of closed at each request's end.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(db) -> dict[str, str]:
    _, secret = issue_key(name="Schemathesis")
    return {"Authorization": f"Bearer {secret}"}


@schema.parametrize()
@settings(
    max_examples=25,
    database=None,  # no .hypothesis directory left in the work tree
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_as_its_schema_says_and_never_500(case, served, bearer):
    case.call_and_validate(headers=bearer, checks=CHECKS)
