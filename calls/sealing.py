"""Sensitive variable values of a call wait for their send encrypted, never in clear (a call
placed from the form, a retry, a campaign row), and are wiped once sent.

The key is derived from SECRET_KEY with HKDF under this module's own label, so it is never the
key Django signs with. Sealing uses the current SECRET_KEY; unsealing also tries every
SECRET_KEY_FALLBACKS entry, so rotating the key (old one moved to the fallbacks) does not break
a campaign that is still sending.

A provider answer that echoes what we sent is stored with the sensitive values masked."""

import base64
import functools
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from calls.vocabulary import MASK, variable_field

HKDF_SALT = b"obd-portal"
HKDF_INFO = b"calls.sealing: campaign variables v1"


def _fernet() -> MultiFernet:
    """Encrypts with the first (current) key, decrypts with any."""
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return MultiFernet([_fernet_for(key) for key in keys])


@functools.lru_cache(maxsize=8)
def _fernet_for(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(values: dict[str, str]) -> str:
    return _fernet().encrypt(json.dumps(values).encode()).decode() if values else ""


def unseal(token: str) -> dict[str, str]:
    """The sealed values; empty when there were none or the key changed (the row then fails
    with a clear error rather than sending masks to the customer)."""
    if not token:
        return {}
    try:
        values: dict[str, str] = json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise ValueError(
            "sealed variables cannot be read: SECRET_KEY changed since the upload "
            "(and the key it had then is not in SECRET_KEY_FALLBACKS)"
        ) from None
    return values


def masked_echo(body: str, secrets: dict[str, str]) -> str:
    """A provider answer as stored: any sensitive value it echoes back replaced by the mask,
    whether under the variable's name or as a value anywhere in the JSON (or in plain text)."""
    if not secrets or not body:
        return body
    names = {n.lower() for n in secrets} | {variable_field(n).lower() for n in secrets}
    values = {v for v in secrets.values() if v}
    # Inside longer text only values long enough not to hit ids and digits by chance.
    findable = sorted((v for v in values if len(v) >= 4), key=len, reverse=True)

    def hide(text: str) -> str:
        for value in findable:
            text = text.replace(value, MASK)
        return text

    try:
        data = json.loads(body)
    except ValueError:
        return hide(body)

    def mask(node: object, key: str = "") -> object:
        if isinstance(node, dict):
            return {k: mask(v, str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [mask(v) for v in node]
        if key.lower() in names or (isinstance(node, str | int) and str(node) in values):
            return MASK
        return hide(node) if isinstance(node, str) else node

    return json.dumps(mask(data), ensure_ascii=False)
