from decimal import Decimal

from django import template

from calls.money import cost_label

register = template.Library()


@register.filter
def cost(credits: Decimal | int | None) -> str:
    """`{{ call.cost|cost }}`: "₹0.45" with a price per credit, else "1 credit"."""
    return cost_label(None if credits is None else Decimal(credits))
