"""Entitlements are derived from the subscription, cached, and invalidated when it changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.cache import cache

from billing.entitlements import entitlements
from tests.billing.conftest import make_event
from tests.billing.helpers import deliver, run_at

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def subscription_event(kind: str, status: str, created: int) -> dict:
    subscription = {
        "id": "sub_gil",
        "object": "subscription",
        "customer": "cus_gil",
        "status": status,
        "items": {"data": [{"price": {"id": "price_pro", "lookup_key": "pro"}}]},
    }
    return make_event(kind, subscription, created=created)


def checkout_event(user_id: int, created: int) -> dict:
    session = {
        "id": "cs_gil",
        "object": "checkout.session",
        "mode": "subscription",
        "customer": "cus_gil",
        "subscription": "sub_gil",
        "client_reference_id": str(user_id),
    }
    return make_event("checkout.session.completed", session, created=created)


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def test_subscription_changes_reach_the_cached_entitlements_after_commit(
    client, user, django_capture_on_commit_callbacks
):
    checkout = checkout_event(user.pk, int(T0.timestamp()))
    start = int(T0.timestamp())
    assert entitlements(user.pk)["plan"] == "free"  # now cached

    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, checkout, T0)
        deliver(
            client, subscription_event("customer.subscription.created", "active", start + 1), T0
        )
        run_at(T0)
    assert entitlements(user.pk) == {
        "plan": "pro",
        "status": "active",
        "features": ["prebooking", "priority_firing", "wallet"],
    }

    with django_capture_on_commit_callbacks(execute=True):
        deliver(
            client, subscription_event("customer.subscription.deleted", "canceled", start + 9), T0
        )
        run_at(T0)
    assert entitlements(user.pk)["plan"] == "free"


def test_cached_entitlements_stay_until_a_commit_invalidates_them(client, user):
    checkout = checkout_event(user.pk, int(T0.timestamp()))
    start = int(T0.timestamp())
    assert entitlements(user.pk)["plan"] == "free"

    # Inside the test's transaction nothing commits: the cache must not be cleared early.
    deliver(client, checkout, T0)
    deliver(client, subscription_event("customer.subscription.created", "active", start + 1), T0)
    run_at(T0)

    assert entitlements(user.pk)["plan"] == "free"
