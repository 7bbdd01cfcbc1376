"""Phone numbers (calls/phone.py): typed any usual way, stored as digits with the country code."""

import pytest
from django.core.exceptions import ValidationError

from calls.phone import normalize_number


@pytest.mark.parametrize(
    "raw", ["+91 88671 35123", "918867135123", "0091 8867135123", "+91-886-713-5123"]
)
def test_numbers_typed_any_usual_way_become_digits_with_country_code(raw):
    assert normalize_number(raw, region=None) == "918867135123"


def test_a_national_number_needs_the_default_region():
    assert normalize_number("8867135123", region="IN") == "918867135123"
    assert normalize_number("08867135123", region="IN") == "918867135123"
    with pytest.raises(ValidationError):
        normalize_number("8867135123", region=None)


@pytest.mark.parametrize("raw", ["", "12345", "+91 12", "not a number", "+999 123456789"])
def test_it_refuses_invalid_numbers(raw):
    with pytest.raises(ValidationError):
        normalize_number(raw, region=None)
