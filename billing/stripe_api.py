"""The Stripe API client, pointed at STRIPE_API_BASE when set (a local fake in tests)."""

from __future__ import annotations

import stripe
from django.conf import settings

from jobs.errors import PermanentError


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
