from collections.abc import Callable

import pytest
from django.test import Client

from calls.models import ApiKey
from calls.models.api import SCOPE_CHOICES

ALL_SCOPES = [scope for scope, _ in SCOPE_CHOICES]


def issue_key(name: str = "CRM", scopes: list[str] | None = None, **fields) -> tuple[ApiKey, str]:
    key = ApiKey(name=name, scopes=ALL_SCOPES if scopes is None else scopes, **fields)
    secret = key.issue()
    key.save()
    return key, secret


@pytest.fixture
def api_key(db) -> tuple[ApiKey, str]:
    return issue_key()


@pytest.fixture
def api(api_key) -> Client:
    """A client sending the key as a system would: no session, no CSRF token."""
    return Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {api_key[1]}"})


@pytest.fixture
def client_with() -> Callable[[str], Client]:
    return lambda secret: Client(
        enforce_csrf_checks=True, headers={"Authorization": f"Bearer {secret}"}
    )
