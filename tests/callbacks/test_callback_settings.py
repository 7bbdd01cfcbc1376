"""The callback settings fail loudly on values that would stall the engine or flood receivers
(each case in a fresh interpreter)."""

import pytest

from tests.test_settings import load_settings


@pytest.mark.parametrize(
    "env",
    [
        {"OBD_CALLBACK_EVERY_SECONDS": "0"},
        {"OBD_CALLBACK_READ_TIMEOUT": "0"},
        {"OBD_CALLBACK_CONNECT_TIMEOUT": "600"},
        {"OBD_CALLBACK_DISABLE_AFTER_DAYS": "0"},
    ],
)
def test_the_callback_settings_refuse_values_that_would_stall_or_flood(env):
    result = load_settings(**env)

    assert result.returncode != 0 and "OBD_CALLBACK_" in result.stderr
