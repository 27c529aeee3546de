"""Billing fixtures: Stripe events signed with the stripe library's own code, posted for real."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
import stripe
from django.test import Client

from billing.tasks import process_event  # noqa: F401 - declares the job type

SECRET = "whsec_test_primary"
WEBHOOK_URL = "/billing/webhooks/stripe/"
_ids = itertools.count(1)


def make_event(event_type: str, obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A Stripe event envelope around `obj`, shaped as the current API version sends it."""
    number = next(_ids)
    return {
        "id": fields.pop("id", f"evt_test_{number:06d}"),
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": fields.pop("created", 1_795_000_000 + number),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": obj},
        **fields,
    }


def sign(body: str, secret: str = SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send for `body`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body}", secret)
    return f"t={timestamp},v1={signature}"


def post_event(client: Client, event: dict[str, Any] | str, **kwargs: Any):
    """POST `event` to the webhook, signed with the test secret unless a header is given."""
    body = event if isinstance(event, str) else json.dumps(event)
    header = kwargs.pop("signature", None) or sign(body)
    return client.post(
        WEBHOOK_URL, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header, **kwargs
    )


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    return SECRET


@pytest.fixture
def customer_event():
    def build(customer_id: str = "cus_A", email: str = "ann@example.com", **fields: Any):
        obj = {
            "id": customer_id,
            "object": "customer",
            "email": email,
            "name": "Ann",
            "metadata": {},
        }
        return make_event(fields.pop("type", "customer.created"), obj, **fields)

    return build
