"""STRIPE_REFETCH_OBJECTS: handlers apply the object as the API has it now, not the event's copy."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from billing.models import Customer, Subscription
from tests.billing import story
from tests.billing.conftest import make_event
from tests.billing.helpers import deliver, drain, run_at, snapshot
from tests.billing.test_story import AFTER_ALL, EXPECTED_STATE
from tests.test_settings import load_settings

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SECOND = int(T0.timestamp())


def subscription(status: str, **extra) -> dict:
    return {
        "id": "sub_eve",
        "object": "subscription",
        "customer": "cus_eve",
        "status": status,
        "items": {"data": [{"price": {"id": "price_pro", "lookup_key": "pro"}}]},
        "cancel_at_period_end": False,
        **extra,
    }


@pytest.fixture
def refetch(settings, fake_stripe):
    settings.STRIPE_REFETCH_OBJECTS = True
    return fake_stripe


def two_updates_in_one_second_processed_newest_first(client) -> None:
    """Stripe's newer update (cancel at period end) is processed before the older one."""
    older = make_event("customer.subscription.updated", subscription("active"), created=SECOND)
    newer = make_event(
        "customer.subscription.updated",
        subscription("active", cancel_at_period_end=True),
        created=SECOND,
    )
    for event in (newer, older):
        deliver(client, event, T0)
        run_at(T0)


def test_with_refetch_two_updates_in_one_second_end_in_stripes_current_state(client, refetch):
    refetch.put(subscription("active", cancel_at_period_end=True))

    two_updates_in_one_second_processed_newest_first(client)

    assert Subscription.objects.get().cancel_at_period_end is True
    assert refetch.requests.count(("GET", "/v1/subscriptions/sub_eve")) == 2


def test_without_refetch_the_watermark_decides_and_the_api_is_not_called(client, fake_stripe):
    two_updates_in_one_second_processed_newest_first(client)

    # Same second, same rank: processing order decides (the documented limit of that mode).
    assert Subscription.objects.get().cancel_at_period_end is False
    assert fake_stripe.requests == []


def test_with_refetch_a_customer_deleted_at_stripe_meanwhile_is_flagged_deleted(client, refetch):
    refetch.put({"id": "cus_eve", "object": "customer", "deleted": True})
    customer = {"id": "cus_eve", "object": "customer", "email": "eve@example.com", "name": "Eve"}
    deliver(client, make_event("customer.updated", customer, created=SECOND), T0)
    run_at(T0)

    row = Customer.objects.get()
    assert (row.deleted, row.email) == (True, "")


def test_with_refetch_an_object_stripe_no_longer_has_applies_the_events_own_copy(client, refetch):
    deliver(
        client,
        make_event("customer.subscription.updated", subscription("past_due"), created=SECOND),
        T0,
    )
    run_at(T0)  # the fake answers 404 resource_missing for sub_eve

    assert Subscription.objects.get().status == "past_due"


def test_with_refetch_the_story_shuffled_and_duplicated_converges(
    client,
    mailbox,
    refetch,
    people,
):
    ann, bob = people
    deliveries = story.events(ann.pk, bob.pk)
    # Stripe's current state of each object: the last event about it in the story.
    refetch.put(
        *(event["data"]["object"] for event in deliveries if "id" in event["data"]["object"])
    )
    rng = random.Random(7)
    deliveries = [event for event in deliveries for _ in range(rng.randint(1, 3))]
    rng.shuffle(deliveries)

    for event in deliveries:
        deliver(client, event, story.at(story.END))
    drain(until=AFTER_ALL + timedelta(days=1))

    assert snapshot() == EXPECTED_STATE


def test_refetch_mode_without_an_api_key_refuses_to_start():
    result = load_settings(STRIPE_REFETCH_OBJECTS="1", STRIPE_API_KEY="")

    assert result.returncode != 0
    assert "STRIPE_REFETCH_OBJECTS=1 needs STRIPE_API_KEY" in result.stderr
