"""Cost shown as money when a credit has a price (OBD_PRICE_PER_CREDIT), else in credits, in
words: calls/money.py, the call page and the dashboard (the export: tests/test_exports.py)."""

import re
from decimal import Decimal

import pytest

from calls.models import CallLog
from calls.money import cost_label
from tests.helpers.portal import text_of
from tests.helpers.settings import read_settings
from tests.test_settings import load_settings


@pytest.mark.parametrize(
    ("credits", "shown"),
    [
        (Decimal("1.0000"), "1 credit"),
        (Decimal("2.5000"), "2.5 credits"),
        (Decimal("100"), "100 credits"),
        (Decimal("0"), "0 credits"),
        (None, "—"),
    ],
)
def test_without_a_price_cost_is_written_in_credits(credits, shown):
    assert cost_label(credits) == shown


@pytest.mark.parametrize(
    ("currency", "credits", "shown"),
    [
        ("INR", Decimal("1"), "₹0.45"),
        ("INR", Decimal("2.5"), "₹1.13"),  # 1.125 rounds half up to the paisa
        ("AED", Decimal("1"), "AED 0.45"),
    ],
)
def test_with_a_price_cost_is_written_as_money(settings, currency, credits, shown):
    settings.OBD_CURRENCY, settings.OBD_PRICE_PER_CREDIT = currency, Decimal("0.45")
    assert cost_label(credits) == shown


def test_the_price_is_read_from_the_environment():
    assert read_settings("OBD_CURRENCY", OBD_CURRENCY="usd", OBD_PRICE_PER_CREDIT="0.45") == {
        "OBD_CURRENCY": "USD"
    }


def test_a_price_that_is_not_a_number_stops_start_up():
    result = load_settings(OBD_PRICE_PER_CREDIT="45 paise")
    assert result.returncode != 0
    assert "OBD_PRICE_PER_CREDIT='45 paise' is not a price" in result.stderr


def cost_on_call_page(agent_client, bridge, sound) -> str:
    call = CallLog.objects.create(
        bridge=bridge, to="918867135123", audio=sound, status="answered", cost=Decimal("1")
    )
    html = agent_client.get(call.get_absolute_url()).text
    return text_of(re.search(r"<dt>Cost</dt><dd>(.*?)</dd>", html)[1])


def test_the_call_page_shows_the_cost_as_money_when_a_credit_has_a_price(
    settings, agent_client, bridge, sound
):
    settings.OBD_CURRENCY, settings.OBD_PRICE_PER_CREDIT = "INR", Decimal("0.45")
    assert cost_on_call_page(agent_client, bridge, sound) == "₹0.45"


def test_the_call_page_shows_the_cost_in_credits_without_a_price(
    settings, agent_client, bridge, sound
):
    settings.OBD_PRICE_PER_CREDIT = None
    assert cost_on_call_page(agent_client, bridge, sound) == "1 credit"


def test_the_dashboard_shows_the_periods_cost_as_money(settings, agent_client, known_calls):
    settings.OBD_CURRENCY, settings.OBD_PRICE_PER_CREDIT = "INR", Decimal("0.45")

    html = agent_client.get("/", {"period": "today"}).text

    # Today's calls cost 1.5 + 1 + 0.5 = 3 credits (tests/helpers/dashboard.py).
    assert re.search(r'id="stat-cost"[^>]*>₹1.35<', html)
