"""The Stripe API client, pointed at STRIPE_API_BASE when set (a local fake in tests)."""

from __future__ import annotations

from typing import Any

import stripe
from django.conf import settings

from jobs.errors import PermanentError

# The Stripe object types our handlers mirror, and the client's service that retrieves each.
_SERVICES = {
    "customer": lambda v1: v1.customers,
    "subscription": lambda v1: v1.subscriptions,
    "invoice": lambda v1: v1.invoices,
    "payment_intent": lambda v1: v1.payment_intents,
    "charge": lambda v1: v1.charges,
    "payment_method": lambda v1: v1.payment_methods,
    "checkout.session": lambda v1: v1.checkout.sessions,
}
RETRIEVABLE = frozenset(_SERVICES)


def client(timeout: float | None = None) -> stripe.StripeClient:
    """A StripeClient with our key; refuses (permanently) when no key is configured.

    `timeout` (seconds per attempt) replaces the library's 80 s, for calls a person waits on.
    """
    if not settings.STRIPE_API_KEY:
        raise PermanentError("STRIPE_API_KEY is not set: cannot call the Stripe API")
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(
        settings.STRIPE_API_KEY,
        base_addresses=base,
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
        http_client=stripe.new_default_http_client(timeout=timeout) if timeout else None,
    )


def is_missing(exc: stripe.StripeError) -> bool:
    """Whether Stripe answered that the object does not exist (404 resource_missing)."""
    return isinstance(exc, stripe.InvalidRequestError) and exc.code == "resource_missing"


# A job applying an event re-reads its object within its own time limit (billing.process_event:
# 30 s): a few seconds a try, not the library's 80.
FETCH_TIMEOUT = 8


def retrieve(object_type: str, object_id: str) -> dict[str, Any] | None:
    """The object's current state at Stripe as plain JSON data; None when Stripe has no such object.

    A deleted customer comes back as Stripe returns it: `{"id": ..., "deleted": true}`.
    """
    service = _SERVICES[object_type](client(timeout=FETCH_TIMEOUT).v1)
    try:
        return service.retrieve(object_id).to_dict(for_json=True)
    except stripe.InvalidRequestError as exc:
        if is_missing(exc):
            return None
        raise
