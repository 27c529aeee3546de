"""Defensive reading of Stripe payloads across API versions (the current one and the one before).

Stripe moved fields in its 2025 versions: subscription periods onto subscription items, the
invoice's subscription under `parent.subscription_details`, the invoice's payment intent into
`payments`. Handlers read through these helpers so one place knows both shapes.

`data_object` also checks the fields the handlers read against what our tables can hold: a
signed event that can never be applied (no id, a string where a number belongs, an amount past
64 bits) raises PermanentError naming the field, so its job dies at once with a message staff
can act on, instead of retrying a KeyError or a DataError for a quarter of an hour.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from billing.models import StripeEvent
from jobs.errors import PermanentError

INT64 = (-(2**63), 2**63 - 1)
INT32 = (0, 2**31 - 1)
# Unix times Python's datetime (years 1 to 9999) and PostgreSQL can both hold.
UNIX_TIME = (0, 253_402_300_799)

# What each kind of field must be; None (null or absent) is always allowed unless "required".
_EXPECTED = {
    "id": "a non-empty string id",
    "ref": "an id (a string, or an object with a string id)",
    "int64": "a 64-bit integer",
    "count": "a 32-bit count",
    "time": "a Unix time",
    "text": "a string",
    "object": "an object",
    "list": "a list",
    "user": "a user id",
}

# Per object (chosen by the event type's prefix): dotted path -> (kind, max length, required).
Spec = dict[str, tuple[str, int, bool]]
_ID: Spec = {"id": ("id", 255, True)}
_OBJECT_SPECS: dict[str, Spec] = {
    "customer.subscription.": {
        **_ID,
        "customer": ("ref", 255, True),
        "status": ("text", 32, False),
        "quantity": ("count", 0, False),
        "trial_end": ("time", 0, False),
        "canceled_at": ("time", 0, False),
        "current_period_end": ("time", 0, False),
        "items": ("object", 0, False),
        "items.data": ("list", 0, False),
        "metadata": ("object", 0, False),
    },
    "customer.": {
        **_ID,
        "email": ("text", 254, False),
        "name": ("text", 255, False),
        "metadata": ("object", 0, False),
        "metadata.user_id": ("user", 0, False),
    },
    "invoice.": {
        **_ID,
        "customer": ("ref", 255, True),
        "status": ("text", 32, False),
        "amount_due": ("int64", 0, False),
        "amount_paid": ("int64", 0, False),
        "currency": ("text", 3, False),
        "attempt_count": ("count", 0, False),
        "next_payment_attempt": ("time", 0, False),
        "hosted_invoice_url": ("text", 2000, False),
        "number": ("text", 255, False),
    },
    "checkout.session.": {
        **_ID,
        "customer": ("ref", 255, False),
        "subscription": ("ref", 255, False),
        "payment_intent": ("ref", 255, False),
        "amount_total": ("int64", 0, False),
        "currency": ("text", 3, False),
        "mode": ("text", 255, False),
        "client_reference_id": ("user", 0, False),
        "metadata": ("object", 0, False),
        "metadata.user_id": ("user", 0, False),
    },
    "payment_intent.": {
        **_ID,
        "customer": ("ref", 255, False),
        "amount": ("int64", 0, False),
        "currency": ("text", 3, False),
        "status": ("text", 32, False),
        "latest_charge": ("ref", 255, False),
    },
    "charge.": {
        # Refund debits are keyed "<charge id>:refunded:<amount>" in a 255-character column.
        "id": ("id", 200, True),
        "customer": ("ref", 255, False),
        "payment_intent": ("ref", 255, False),
        "amount": ("int64", 0, False),
        "amount_refunded": ("int64", 0, False),
        "currency": ("text", 3, False),
        "metadata": ("object", 0, False),
    },
    "payment_method.": {
        **_ID,
        "customer": ("ref", 255, False),
        "type": ("text", 32, False),
        "card": ("object", 0, False),
        "card.brand": ("text", 32, False),
        "card.last4": ("text", 4, False),
    },
}


def _is_int(value: Any, bounds: tuple[int, int]) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and bounds[0] <= value <= bounds[1]
    )


def _fits(kind: str, value: Any, max_length: int) -> bool:
    if kind in ("id", "text"):
        return (
            isinstance(value, str)
            and (kind == "text" or value != "")
            and (max_length == 0 or len(value) <= max_length)
        )
    if kind == "ref":
        return ref(value) is not None and len(ref(value)) <= max_length
    if kind == "int64":
        return _is_int(value, INT64)
    if kind == "count":
        return _is_int(value, INT32)
    if kind == "time":
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and UNIX_TIME[0] <= value <= UNIX_TIME[1]
        )
    if kind == "object":
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    if kind == "user":  # our checkout writes the user's pk, as a string (metadata) or as is
        text = str(value) if _is_int(value, INT64) else value
        if not isinstance(text, str) or len(text) > 500:
            return False
        return not text.isdigit() or (text.isascii() and len(text) <= 19 and int(text) < 2**63)
    raise ValueError(kind)


def _spec_for(event_type: str) -> Spec:
    prefix = max((p for p in _OBJECT_SPECS if event_type.startswith(p)), key=len, default=None)
    return _OBJECT_SPECS[prefix] if prefix else _ID


def payload_problem(event_type: str, obj: Any) -> str | None:
    """None when `obj` (an event's data.object) can be applied, else which field is wrong."""
    if not isinstance(obj, dict):
        return f"{event_type}: data.object is not an object"
    for path, (kind, max_length, required) in _spec_for(event_type).items():
        value = dig(obj, *path.split("."))
        if value is None:
            if required:
                return f"{event_type}: data.object.{path} is missing"
            continue
        if not _fits(kind, value, max_length):
            what = _EXPECTED[kind]
            if max_length and kind in ("id", "ref", "text"):
                what += f" of at most {max_length} characters"
            return f"{event_type}: data.object.{path} is not {what}"
    return None


def data_object(event: StripeEvent) -> dict[str, Any]:
    """The Stripe object the event is about (`data.object`), checked: PermanentError if bad."""
    obj = dig(event.payload, "data", "object")
    problem = payload_problem(event.type, obj)
    if problem:
        raise PermanentError(problem)
    return obj


def when(value: Any) -> datetime | None:
    """A Stripe unix timestamp as an aware UTC datetime; None for null or absent.

    A number no datetime holds (fields inside lists are not in the specs above) is a
    PermanentError: the event can never be applied as it is.
    """
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not UNIX_TIME[0] <= value <= UNIX_TIME[1]:
        raise PermanentError(f"a Unix time out of range: {value}")
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
