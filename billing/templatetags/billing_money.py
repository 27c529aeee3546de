"""Template filter for money kept in the currency's smallest unit."""

from __future__ import annotations

from django import template

from billing.emails import money as format_money

register = template.Library()


@register.filter
def money(amount: int | None, currency: str) -> str:
    """{{ amount|money:currency }}: 1999, "eur" -> "19.99 EUR"; empty for no amount."""
    return "" if amount is None else format_money(amount, currency or "")
