"""Phone numbers as the provider wants them: digits with country code, no `+`."""

from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError


def normalize_number(raw: str, region: str | None = None) -> str:
    """`+91 88671 35123`, `918867135123` and (region IN) `8867135123` all give `918867135123`."""
    text = (raw or "").strip()
    if not text:
        raise ValidationError("Enter a phone number with its country code.", code="required")
    region = region if region is not None else settings.OBD_DEFAULT_REGION
    if text.startswith("00"):
        text = "+" + text[2:]
    attempts: list[tuple[str, str | None]]
    if text.startswith("+"):
        attempts = [(text, None)]
    else:
        # Try the national form in the default region first, then the digits as international.
        attempts = [(text, region)] if region else []
        attempts.append(("+" + "".join(ch for ch in text if ch.isdigit()), None))
    for number, hint in attempts:
        try:
            parsed = phonenumbers.parse(number, hint)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
    hint = "" if region else " (for example +91 88671 35123)"
    raise ValidationError(
        "%(value)s is not a valid phone number with country code%(hint)s.",
        code="invalid",
        params={"value": text, "hint": hint},
    )


def validate_number(value: str) -> None:
    """Model validator: the stored form is exactly the normalized digits."""
    if not value.isdigit() or normalize_number("+" + value) != value:
        raise ValidationError(
            "%(value)s is not a valid number: store digits with country code, no + (e.g. 918068287602).",
            code="invalid",
            params={"value": value},
        )


@lru_cache(maxsize=4096)  # a page shows the same numbers again and again (call log: 2 per row)
def pretty_number(value: str) -> str:
    """918867135123 → +91 88671 35123, for pages; falls back to the digits."""
    try:
        parsed = phonenumbers.parse("+" + value)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
