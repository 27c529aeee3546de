"""The Stripe API client, pointed at STRIPE_API_BASE when set (a local fake in tests)."""

from __future__ import annotations

import stripe
from django.conf import settings

from jobs.errors import PermanentError


def client() -> stripe.StripeClient:
    """A StripeClient with our key; refuses (permanently) when no key is configured."""
    if not settings.STRIPE_API_KEY:
        raise PermanentError("STRIPE_API_KEY is not set: cannot call the Stripe API")
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(
        settings.STRIPE_API_KEY,
        base_addresses=base,
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
    )
