"""Campaign variables sealed under a key derived from SECRET_KEY survive a key rotation."""

import base64

import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from calls.sealing import seal, unseal

OLD_KEY = "old-key-" + "o" * 60
NEW_KEY = "new-key-" + "n" * 60
VALUES = {"otp": "482913", "Name": "Asha"}


@pytest.fixture
def old_key(settings):
    settings.SECRET_KEY = OLD_KEY
    settings.SECRET_KEY_FALLBACKS = []
    return settings


def rotate(settings) -> None:
    """What the README asks for: a new SECRET_KEY, the old one moved to SECRET_KEY_FALLBACKS."""
    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = [OLD_KEY]


def test_values_sealed_before_a_key_rotation_still_unseal(old_key):
    token = seal(VALUES)
    rotate(old_key)
    assert unseal(token) == VALUES


def test_after_a_rotation_values_are_sealed_with_the_new_key(old_key):
    rotate(old_key)
    token = seal(VALUES)
    old_key.SECRET_KEY_FALLBACKS = []  # the old key retired: the new seal does not need it
    assert unseal(token) == VALUES
    old_key.SECRET_KEY = OLD_KEY
    with pytest.raises(ValueError, match="SECRET_KEY changed"):
        unseal(token)


def test_a_key_that_did_not_seal_them_gives_a_clear_error(old_key):
    token = seal(VALUES)
    old_key.SECRET_KEY = NEW_KEY
    old_key.SECRET_KEY_FALLBACKS = ["some-other-retired-key-" + "x" * 40]
    with pytest.raises(ValueError) as error:
        unseal(token)
    message = str(error.value)
    assert message.startswith("sealed variables cannot be read: SECRET_KEY changed")
    assert "SECRET_KEY_FALLBACKS" in message
    for key in (OLD_KEY, NEW_KEY, *old_key.SECRET_KEY_FALLBACKS):
        assert key not in message


def test_the_sealing_key_is_derived_with_hkdf_under_its_own_label(old_key):
    token = seal(VALUES).encode()
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"obd-portal",
        info=b"calls.sealing: campaign variables v1",
    )
    derived = Fernet(base64.urlsafe_b64encode(hkdf.derive(OLD_KEY.encode())))
    assert derived.decrypt(token)  # opens with the HKDF key …
    for naive in (OLD_KEY.encode()[:32], OLD_KEY.encode()[-32:]):
        with pytest.raises(InvalidToken):  # … and not with the raw SECRET_KEY's bytes
            Fernet(base64.urlsafe_b64encode(naive)).decrypt(token)


def test_nothing_to_seal_stores_nothing(old_key):
    assert seal({}) == ""
    assert unseal("") == {}
