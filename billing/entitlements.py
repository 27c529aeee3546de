"""A user's plan and features, derived from their subscriptions and cached.

Handlers that change a subscription (or who owns a customer) call `invalidate_entitlements`,
which deletes the cached value only when their transaction commits.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from billing.models import Customer, Subscription

PLAN_FEATURES: dict[str, list[str]] = {
    "free": [],
    "basic": ["prebooking"],
    "pro": ["prebooking", "priority_firing", "wallet"],
}


def _key(user_id: int) -> str:
    return f"billing:entitlements:{user_id}"


def _compute(user_id: int) -> dict[str, Any]:
    subscription = (
        Subscription.objects.filter(
            customer__user_id=user_id,
            customer__deleted=False,
            status__in=Subscription.ENTITLED,
        )
        .order_by("-current_period_end", "-id")
        .first()
    )
    if subscription is None:
        return {"plan": "free", "status": "", "features": PLAN_FEATURES["free"]}
    return {
        "plan": subscription.plan,
        "status": subscription.status,
        "features": PLAN_FEATURES.get(subscription.plan, []),
    }


def entitlements(user_id: int) -> dict[str, Any]:
    """The user's current plan, subscription status and features (cached)."""
    return cache.get_or_set(
        _key(user_id), lambda: _compute(user_id), settings.BILLING_ENTITLEMENTS_TTL
    )


def invalidate_entitlements(customer: Customer) -> None:
    """Forget the cached entitlements of the customer's user once this transaction commits."""
    if customer.user_id is not None:
        key = _key(customer.user_id)
        transaction.on_commit(lambda: cache.delete(key))
