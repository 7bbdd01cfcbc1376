"""Settings as a fresh interpreter reads them from the environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def read_settings(*names: str, **env: str) -> dict[str, object]:
    """The named settings as a fresh interpreter reads them from `env`."""
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}))"
    )
    dropped = {
        "DATABASE_URL",
        "DEBUG",
        "SECRET_KEY_FALLBACKS",
        "OBD_TRUSTED_PROXY_COUNT",
        "EMAIL_URL",
        "TIME_ZONE",
        "OBD_DEFAULT_REGION",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in dropped},
            "DJANGO_SETTINGS_MODULE": "obdportal.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))
