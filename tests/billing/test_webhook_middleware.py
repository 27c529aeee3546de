"""The webhooks are answered before the session, CSRF, auth, messages and lockout middleware
(billing.middleware): nothing of theirs shows on a webhook answer, and every other page still
goes through them."""

from __future__ import annotations

import pytest

from billing.models import StripeEvent
from tests.billing.conftest import post_event

pytestmark = pytest.mark.django_db


def test_a_webhook_is_stored_without_passing_the_session_and_csrf_middleware(
    client, customer_event
):
    client.cookies["sessionid"] = "not-a-session"  # would make the session middleware look
    response = post_event(client, customer_event())

    assert response.status_code == 200
    assert StripeEvent.objects.count() == 1
    assert "Cookie" not in response.get("Vary", "")  # the session middleware never saw it
    assert "X-Frame-Options" not in response  # nor the clickjacking one
    assert response["X-Content-Type-Options"] == "nosniff"  # the security middleware did


def test_a_webhook_is_counted_under_its_route(client, customer_event):
    post_event(client, customer_event())

    body = client.get("/metrics").content.decode()

    assert 'http_requests_total{route="billing:stripe-webhook",status="200"}' in body


def test_other_pages_still_pass_every_middleware(client):
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert "csrftoken" in response.cookies
