"""Sensitive variable values of campaign rows wait for their send encrypted, never in clear, and
are wiped once sent. Single calls never store them at all (they are sent from the request)."""

import base64
import functools
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    return _fernet_for(settings.SECRET_KEY)


@functools.lru_cache(maxsize=4)
def _fernet_for(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"obd-portal sealed variables\0" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(values: dict[str, str]) -> str:
    return _fernet().encrypt(json.dumps(values).encode()).decode() if values else ""


def unseal(token: str) -> dict[str, str]:
    """The sealed values; empty when there were none or the key changed (the row then fails
    with a clear error rather than sending masks to the customer)."""
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise ValueError(
            "sealed variables cannot be read: SECRET_KEY changed since the upload"
        ) from None
