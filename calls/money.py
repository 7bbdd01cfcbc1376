"""A call's cost. The provider bills in credits; with OBD_PRICE_PER_CREDIT set, pages and exports
show it as money in OBD_CURRENCY too."""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

SYMBOLS = {"INR": "₹", "USD": "$", "EUR": "€", "GBP": "£"}
CENT = Decimal("0.01")


def plain(number: Decimal) -> str:
    """2.5000 → "2.5", 100 → "100" (never 1E+2)."""
    return f"{number.normalize():f}"


def price_of(credits: Decimal) -> Decimal | None:
    """What `credits` cost in OBD_CURRENCY, to the cent; None while no price is configured."""
    price = settings.OBD_PRICE_PER_CREDIT
    return None if price is None else (credits * price).quantize(CENT, ROUND_HALF_UP)


def cost_label(credits: Decimal | None) -> str:
    """With a price per credit "₹0.45" (or "AED 0.45"), else "1 credit", "2.5 credits"."""
    if credits is None:
        return "—"
    price = price_of(credits)
    if price is None:
        return f"{plain(credits)} credit{'' if credits == 1 else 's'}"
    currency = settings.OBD_CURRENCY
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{price:f}" if symbol else f"{currency} {price:f}"
