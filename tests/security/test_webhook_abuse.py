"""The webhook endpoint is outside every throttle, and its logs carry ids and types, not payloads.

Stripe retries a failed delivery for days from a handful of addresses: a rate limit or lockout
there would drop real payments. Its defences (signature first, size limit) are tested in
tests/billing/test_webhook.py; these tests make sure the login and form throttles never reach it.
"""

from __future__ import annotations

import io
import logging

import pytest
from django.test import Client

from jobs.testing import run_due_jobs
from tests.billing.conftest import SECRET, make_event, post_event

pytestmark = pytest.mark.django_db
STRIPE_ADDRESS = "3.18.12.63"


def customer(n: int) -> dict:
    obj = {"id": f"cus_{n}", "object": "customer", "email": f"ann{n}@example.com", "metadata": {}}
    return make_event("customer.created", obj)


def test_deliveries_from_an_address_that_every_throttle_blocks_are_still_accepted(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.SIGNUP_RATE = "1/h"
    for n in range(settings.AXES_FAILURE_LIMIT):  # the address is now locked out of logins ...
        client.post(
            "/accounts/login/", {"username": f"u{n}", "password": "x"}, REMOTE_ADDR=STRIPE_ADDRESS
        )
    client.post("/accounts/signup/", {"username": "a"}, REMOTE_ADDR=STRIPE_ADDRESS)
    blocked = client.post("/accounts/signup/", {"username": "b"}, REMOTE_ADDR=STRIPE_ADDRESS)
    assert blocked.status_code == 429  # ... and out of sign-ups

    statuses = [
        post_event(client, customer(n), REMOTE_ADDR=STRIPE_ADDRESS).status_code for n in range(60)
    ]

    assert statuses == [200] * 60


def test_webhook_and_processing_logs_name_events_without_payload_or_signature(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "stdout")
    buffer = io.StringIO()
    stream = handler.setStream(buffer)
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)

    event = customer(1)
    try:
        response = post_event(Client(), event)
        post_event(Client(), event)  # a duplicate
        post_event(Client(), event, signature="t=1,v1=" + "ab" * 32)  # a forgery
        run_due_jobs()
    finally:
        handler.setStream(stream)
        logging.getLogger().setLevel(level)

    logs = buffer.getvalue()
    assert response.status_code == 200
    assert event["id"] in logs  # the logs say which event ...
    assert "ann1@example.com" not in logs  # ... never what it carried
    assert "ab" * 32 not in logs
