"""What Stripe sends after a Checkout Session the fake created: the events of its completion."""

from __future__ import annotations

import time
from typing import Any

from tests.billing.conftest import make_event

PLANS = {"basic": "price_basic_test", "pro": "price_pro_test"}
DAY = 86_400


def session_posted(fake) -> dict[str, str]:
    """The form fields of the last Checkout Session the app created at the fake."""
    return [form for path, form in fake.posted if path == "/v1/checkout/sessions"][-1]


def last_session(fake) -> dict[str, Any]:
    """The last Checkout Session object the fake answered with."""
    return [s for s in fake.sessions.values() if s["object"] == "checkout.session"][-1]


def completed(session: dict[str, Any], created: int, subscription_id: str = "") -> dict:
    """checkout.session.completed for `session`, paid."""
    obj = {
        **session,
        "status": "complete",
        "payment_status": "paid",
        "subscription": subscription_id or None,
        "payment_intent": None if subscription_id else f"pi_{session['id']}",
        "url": None,
    }
    return make_event("checkout.session.completed", obj, created=created)


def subscription_created(
    customer_id: str, price_id: str, created: int, status: str = "active"
) -> dict:
    """customer.subscription.created for a one-item subscription to `price_id`."""
    item = {
        "id": f"si_{customer_id}",
        "quantity": 1,
        "current_period_end": created + 30 * DAY,
        "price": {"id": price_id, "object": "price", "product": "prod_test"},
    }
    subscription = {
        "id": f"sub_{customer_id}",
        "object": "subscription",
        "customer": customer_id,
        "status": status,
        "items": {"object": "list", "data": [item]},
        "trial_end": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
    }
    return make_event("customer.subscription.created", subscription, created=created)


def now() -> int:
    """Stripe's `created` for an event sent now (whole seconds)."""
    return int(time.time())
