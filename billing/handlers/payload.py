"""Defensive reading of Stripe payloads across API versions (the current one and the one before).

Stripe moved fields in its 2025 versions: subscription periods onto subscription items, the
invoice's subscription under `parent.subscription_details`, the invoice's payment intent into
`payments`. Handlers read through these helpers so one place knows both shapes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from billing.models import StripeEvent


def data_object(event: StripeEvent) -> dict[str, Any]:
    """The Stripe object the event is about (`data.object`)."""
    return event.payload["data"]["object"]


def when(value: Any) -> datetime | None:
    """A Stripe unix timestamp as an aware UTC datetime; None for null or absent."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def ref(value: Any) -> str | None:
    """The id of a referenced object, whether Stripe sent the id or the expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def dig(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]... or None as soon as a step is missing."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def first_item(subscription: dict[str, Any]) -> dict[str, Any]:
    """The subscription's first item (our plans have one), or an empty dict."""
    items = dig(subscription, "items", "data") or []
    return items[0] if items and isinstance(items[0], dict) else {}


def subscription_period_end(subscription: dict[str, Any]) -> datetime | None:
    """current_period_end: on the subscription before 2025-03-31, on its items since."""
    legacy = subscription.get("current_period_end")
    if legacy is not None:
        return when(legacy)
    return when(first_item(subscription).get("current_period_end"))


def subscription_price(subscription: dict[str, Any]) -> tuple[str, str]:
    """(price id, plan name) of the subscription's first item, or of the legacy `plan`."""
    price = first_item(subscription).get("price") or subscription.get("plan") or {}
    if not isinstance(price, dict):
        return ref(price) or "", ""
    plan = price.get("lookup_key") or price.get("nickname") or ref(price.get("product")) or ""
    return price.get("id") or "", plan


def subscription_quantity(subscription: dict[str, Any]) -> int:
    """The quantity of the first item (the legacy top-level `quantity` as a fallback)."""
    quantity = first_item(subscription).get("quantity", subscription.get("quantity"))
    return quantity if isinstance(quantity, int) and quantity >= 0 else 1


def invoice_subscription_id(invoice: dict[str, Any]) -> str | None:
    """The invoice's subscription: `parent.subscription_details.subscription` since 2025."""
    return ref(dig(invoice, "parent", "subscription_details", "subscription")) or ref(
        invoice.get("subscription")
    )


def invoice_payment_intent_id(invoice: dict[str, Any]) -> str | None:
    """The invoice's payment intent: top-level before 2025, in `payments` since."""
    legacy = ref(invoice.get("payment_intent"))
    if legacy:
        return legacy
    for payment in dig(invoice, "payments", "data") or []:
        found = ref(dig(payment, "payment", "payment_intent"))
        if found:
            return found
    return None
