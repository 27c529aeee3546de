"""Handlers for customer.subscription.* events."""

from __future__ import annotations

from typing import Any

from billing.dunning import end_cases
from billing.entitlements import invalidate_entitlements
from billing.handlers.payload import (
    data_object,
    ref,
    subscription_period_end,
    subscription_price,
    subscription_quantity,
    when,
)
from billing.handlers.sync import apply_newer, ensure_customer
from billing.models import StripeEvent, Subscription
from mail.services import queue_email


def _values(subscription: dict[str, Any]) -> dict[str, Any]:
    price_id, plan = subscription_price(subscription)
    return {
        "customer": ensure_customer(ref(subscription["customer"])),
        "status": subscription.get("status") or "",
        "price_id": price_id,
        "plan": plan,
        "quantity": subscription_quantity(subscription),
        "trial_end": when(subscription.get("trial_end")),
        "current_period_end": subscription_period_end(subscription),
        "cancel_at_period_end": bool(subscription.get("cancel_at_period_end")),
        "canceled_at": when(subscription.get("canceled_at")),
    }


def upsert_subscription(event: StripeEvent) -> Subscription:
    """Mirror the subscription in the event unless newer state is already applied."""
    row, applied = apply_newer(
        Subscription, data_object(event)["id"], event, _values(data_object(event)), event.type
    )
    if applied:
        invalidate_entitlements(row.customer)
        end_cases(row, event)
    return row


def subscription_changed(event: StripeEvent) -> None:
    """created / updated / paused / resumed: the payload's status says which."""
    upsert_subscription(event)


def subscription_deleted(event: StripeEvent) -> None:
    """deleted: the subscription ended; tell the customer (once, whoever canceled it)."""
    row = upsert_subscription(event)
    queue_email(
        f"subscription:{row.stripe_id}",
        "subscription_canceled",
        customer=row.customer,
        context={"plan": row.plan, "reason": ""},
    )


def trial_will_end(event: StripeEvent) -> None:
    """trial_will_end (3 days before): remind the customer, once per trial end date."""
    row = upsert_subscription(event)
    trial_end = data_object(event).get("trial_end")
    queue_email(
        f"subscription:{row.stripe_id}:trial:{trial_end}",
        "trial_ending",
        customer=row.customer,
        context={"plan": row.plan, "trial_end": when(trial_end)},
    )
