"""Event type -> handler. A type not listed here is stored and marked ignored."""

from __future__ import annotations

from collections.abc import Callable

from billing.handlers import customer
from billing.models import StripeEvent

Handler = Callable[[StripeEvent], None]

HANDLERS: dict[str, Handler] = {
    "customer.created": customer.customer_upserted,
    "customer.updated": customer.customer_upserted,
}


def handler_for(event_type: str) -> Handler | None:
    """The function that applies events of this type, or None when we do not handle it."""
    return HANDLERS.get(event_type)
