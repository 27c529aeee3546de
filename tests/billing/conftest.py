"""Billing fixtures: Stripe events signed with the stripe library's own code, posted for real."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import stripe
import time_machine
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
    return stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)


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
    # Users are made in many tests here; the production hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
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


@pytest.fixture
def fake_stripe(settings):
    """The local fake Stripe API, with the settings pointing the stripe client at it."""
    from tests.billing import fake_stripe as fake_module

    fake = fake_module.start()
    settings.STRIPE_API_KEY = "sk_test_fake"
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def mailbox(settings):
    """anymail's test backend; returns django.core.mail.outbox, emptied."""
    from django.core import mail

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    mail.outbox = []
    return mail.outbox


@pytest.fixture
def people(django_user_model):
    """Ann and Bob of tests/billing/story.py, signed up an hour before it starts."""
    from tests.billing import story

    with time_machine.travel(story.at(-3600), tick=False):
        ann = django_user_model.objects.create_user("ann", "ann@example.com", "pw-ann-1234!")
        bob = django_user_model.objects.create_user("bob", "bob@example.com", "pw-bob-1234!")
    return ann, bob
