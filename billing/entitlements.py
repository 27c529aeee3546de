"""A user's plan and features, derived from their subscriptions and cached; and what they gate.

Plans, their features and limits come from settings (BILLING_PLANS, BILLING_PLAN_FEATURES,
BILLING_PLAN_MAX_PENDING). Views gate a feature with `@requires_feature("...")`; prebooking
asks `pending_prebooking_limit`. Handlers that change a subscription (or who owns a customer)
call `invalidate_entitlements`, which deletes the cached value only when their transaction
commits.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from billing.models import Customer, Subscription

FREE = "free"
FEATURE_LABELS = {
    "prebooking": "Prebookings",
    "priority_firing": "Priority firing",
    "wallet": "Wallet top-ups",
}


def _key(user_id: int) -> str:
    return f"billing:entitlements:{user_id}"


def plan_of(subscription: Subscription) -> str:
    """Our plan name for a subscription: its price in BILLING_PLANS, else Stripe's lookup key."""
    for plan, price_id in settings.BILLING_PLANS.items():
        if price_id == subscription.price_id:
            return plan
    return subscription.plan


def features_of(plan: str) -> list[str]:
    """What a plan unlocks (nothing for a plan the settings do not name)."""
    return list(settings.BILLING_PLAN_FEATURES.get(plan, []))


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
        return {"plan": FREE, "status": "", "features": features_of(FREE)}
    plan = plan_of(subscription)
    return {"plan": plan, "status": subscription.status, "features": features_of(plan)}


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


def max_pending_for(plan: str) -> int:
    """How many pending prebookings a plan allows (PREBOOKING_MAX_PENDING when it names none)."""
    return settings.BILLING_PLAN_MAX_PENDING.get(plan, settings.PREBOOKING_MAX_PENDING)


def pending_prebooking_limit(user_id: int) -> int:
    """How many pending prebookings the user may hold, by their current plan."""
    return max_pending_for(entitlements(user_id)["plan"])


def plans_with(feature: str) -> list[str]:
    """The plans that include `feature`: those offered on /billing/ first, in their order."""
    offered = [plan for plan in settings.BILLING_PLANS if feature in features_of(plan)]
    others = [
        plan
        for plan in settings.BILLING_PLAN_FEATURES
        if plan not in offered and feature in features_of(plan)
    ]
    return offered + others


def requires_feature(feature: str) -> Callable:
    """View decorator: signed-in users whose plan includes `feature`; others see which plan has it.

    The refusal is a 403 page naming the plans with the feature and linking to /billing/; an
    anonymous visitor is sent to log in first. For a class-based view, wrap its dispatch with
    `django.utils.decorators.method_decorator`.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            current = entitlements(request.user.pk)
            if feature in current["features"]:
                return view(request, *args, **kwargs)
            context = {
                "feature": FEATURE_LABELS.get(feature, feature),
                "plans": plans_with(feature),
                "current": current,
            }
            return render(request, "billing/feature_required.html", context, status=403)

        return login_required(wrapped)

    return decorator
