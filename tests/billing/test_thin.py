"""Thin events (v2 event notifications): verified by the stripe library, stored once, the object
fetched from the API in the job and applied through the ordinary handlers."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from billing.models import Customer, StripeEvent, Subscription
from jobs.models import Job
from tests.billing import story
from tests.billing.conftest import make_event, sign
from tests.billing.helpers import drain, run_at, sent, snapshot
from tests.billing.test_story import AFTER_ALL, EXPECTED_STATE, LATE_EMAILS

pytestmark = pytest.mark.django_db
THIN_URL = "/billing/webhooks/stripe/thin/"
THIN_SECRET = "whsec_test_thin"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def thin_secret(settings):
    settings.STRIPE_THIN_WEBHOOK_SECRET = THIN_SECRET
    return THIN_SECRET


def notification(event_type: str, object_id: str, kind: str, path: str, **fields) -> dict:
    """A thin event notification as an event destination posts it."""
    return {
        "id": fields.pop("id", f"evt_thin_{object_id}_{event_type.rsplit('.', 1)[-1]}"),
        "object": "v2.core.event",
        "type": event_type,
        "livemode": False,
        "created": "2026-12-01T09:00:00.000Z",
        "related_object": {"id": object_id, "type": kind, "url": f"/v1/{path}/{object_id}"},
        "reason": {"type": "request", "request": {"id": "req_1", "idempotency_key": "ik_1"}},
        **fields,
    }


def post_thin(client, body: dict | str, secret: str = THIN_SECRET, **kwargs):
    raw = body if isinstance(body, str) else json.dumps(body)
    with time_machine.travel(T0, tick=False):
        return client.post(
            THIN_URL,
            raw,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=kwargs.pop("signature", None) or sign(raw, secret),
            **kwargs,
        )


def subscription_now(status: str) -> dict:
    return {
        "id": "sub_fay",
        "object": "subscription",
        "customer": "cus_fay",
        "status": status,
        "items": {"data": [{"price": {"id": "price_pro", "lookup_key": "pro"}}]},
        "cancel_at_period_end": False,
    }


def test_a_thin_event_is_stored_once_and_applies_the_object_fetched_from_the_api(
    client, fake_stripe
):
    fake_stripe.put(subscription_now("active"))
    thin = notification(
        "v1.customer.subscription.updated", "sub_fay", "subscription", "subscriptions"
    )

    first, again = post_thin(client, thin), post_thin(client, thin)
    run_at(T0)

    assert (first.status_code, first.json()) == (200, {"received": True})
    assert again.json() == {"received": True, "duplicate": True}
    stored = StripeEvent.objects.get()
    assert (stored.stripe_id, stored.kind, stored.type, stored.status, stored.created) == (
        thin["id"],
        "thin",
        "v1.customer.subscription.updated",
        "processed",
        T0,
    )
    assert ("GET", "/v1/subscriptions/sub_fay") in fake_stripe.requests
    row = Subscription.objects.get()
    assert (row.status, row.plan, row.customer.stripe_id) == ("active", "pro", "cus_fay")
    assert Job.objects.filter(name="billing.tasks.process_event").count() == 1


def test_a_thin_invoice_paid_sends_the_receipt_like_a_snapshot_event(client, fake_stripe, mailbox):
    fake_stripe.put(
        {"id": "cus_fay", "object": "customer", "email": "fay@example.com", "name": "Fay"},
        {
            "id": "in_fay",
            "object": "invoice",
            "customer": "cus_fay",
            "status": "paid",
            "amount_due": 700,
            "amount_paid": 700,
            "currency": "eur",
            "hosted_invoice_url": "https://invoice.stripe.test/in_fay",
        },
    )
    post_thin(client, notification("v1.customer.created", "cus_fay", "customer", "customers"))
    post_thin(client, notification("v1.invoice.paid", "in_fay", "invoice", "invoices"))

    drain(until=T0 + timedelta(hours=1))

    assert sent(mailbox) == [("fay@example.com", "Receipt for your payment")]
    assert "7.00 EUR" in mailbox[0].body


def test_a_thin_event_about_a_customer_deleted_at_stripe_flags_it_deleted(client, fake_stripe):
    post_thin(client, notification("v1.customer.updated", "cus_gone", "customer", "customers"))
    run_at(T0)  # the fake answers 404 resource_missing

    assert StripeEvent.objects.get().status == "processed"
    assert Customer.objects.get(stripe_id="cus_gone").deleted is True


def test_a_thin_event_of_a_type_we_do_not_handle_is_ignored_without_a_fetch(client, fake_stripe):
    post_thin(client, notification("v1.billing.meter.created", "mtr_1", "billing.meter", "meters"))
    run_at(T0)

    assert StripeEvent.objects.get().status == "ignored"
    assert fake_stripe.requests == []


@pytest.mark.parametrize(
    "body,secret,reason",
    [
        ("thin", "whsec_wrong", "invalid signature"),
        ("snapshot", THIN_SECRET, "not a thin event notification"),
        ("{not json", THIN_SECRET, "not a thin event notification"),
    ],
)
def test_a_bad_thin_delivery_is_refused_with_a_reason_and_stores_nothing(
    client, body, secret, reason
):
    bodies = {
        "thin": notification("v1.customer.updated", "cus_x", "customer", "customers"),
        "snapshot": make_event("customer.updated", {"id": "cus_x", "object": "customer"}),
    }

    response = post_thin(client, bodies.get(body, body), secret)

    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert not StripeEvent.objects.exists()


def test_a_thin_delivery_signed_too_long_ago_is_refused_as_outside_the_tolerance(client):
    thin = json.dumps(notification("v1.customer.updated", "cus_x", "customer", "customers"))
    old = sign(thin, THIN_SECRET, timestamp=int(T0.timestamp()) - 301)

    response = post_thin(client, thin, signature=old)

    assert (response.status_code, response.json()) == (
        400,
        {"error": "timestamp outside the 300 s tolerance"},
    )
    assert not StripeEvent.objects.exists()


def test_the_thin_endpoint_wants_post_and_a_configured_secret(client, settings):
    assert client.get(THIN_URL).status_code == 405
    settings.STRIPE_THIN_WEBHOOK_SECRET = ""
    thin = notification("v1.customer.updated", "cus_x", "customer", "customers")
    assert post_thin(client, thin).status_code == 503


COLLECTIONS = {
    "customer": "customers",
    "subscription": "subscriptions",
    "invoice": "invoices",
    "payment_intent": "payment_intents",
    "charge": "charges",
    "payment_method": "payment_methods",
    "checkout.session": "checkout/sessions",
}


def test_the_story_told_as_thin_events_shuffled_and_duplicated_converges(
    client, mailbox, fake_stripe, people
):
    ann, bob = people
    events = [e for e in story.events(ann.pk, bob.pk) if e["data"]["object"].get("id")]
    fake_stripe.put(*(event["data"]["object"] for event in events))  # Stripe's state at the end
    thin = [
        notification(
            f"v1.{event['type']}",
            obj["id"],
            obj["object"],
            COLLECTIONS[obj["object"]],
            id=event["id"].replace("evt_story", "evt_thin"),
            created=datetime.fromtimestamp(event["created"], tz=UTC).isoformat(),
        )
        for event in events
        for obj in [event["data"]["object"]]
    ]
    rng = random.Random(3)
    thin = [item for item in thin for _ in range(rng.randint(1, 2))]
    rng.shuffle(thin)

    for item in thin:
        assert post_thin(client, item).status_code == 200
    drain(until=AFTER_ALL + timedelta(days=1))

    # A thin event has no copy of the object: the card, detached by now, no longer names its
    # customer at Stripe, so nothing tells us whose it was (a documented limit).
    expected = {**EXPECTED_STATE, "payment_methods": [("pm_ann", None, "visa", False)]}
    assert snapshot() == expected
    assert StripeEvent.objects.filter(kind="thin", status="processed").count() == len(events)
    assert sent(mailbox) == LATE_EMAILS  # each once


def test_a_thin_delivery_over_the_size_limit_is_refused_unread(client, settings):
    settings.STRIPE_WEBHOOK_MAX_BYTES = 200
    thin = notification("v1.customer.updated", "cus_x", "customer", "customers", pad="x" * 300)

    response = post_thin(client, thin)

    assert (response.status_code, response.json()) == (413, {"error": "body over 200 bytes"})
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ('"deep": ' + "[" * 2000 + "]" * 2000, "nests more than 32 levels deep"),
        ('"big": 1' + "0" * 200, "more than 100 digits"),
        ('"nan": NaN', "NaN, which JSON does not allow"),
        ('"huge": 1e400', "out of range"),
    ],
)
def test_a_signed_thin_body_past_the_parsing_limits_is_refused_with_a_reason(client, extra, reason):
    thin = json.dumps(notification("v1.customer.updated", "cus_x", "customer", "customers"))
    raw = thin[:-1] + ", " + extra + "}"

    response = post_thin(client, raw)

    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example/v1/customers/cus_x",
        "//attacker.example/v1/customers/cus_x",
        "/v1/../admin",
        "/v1/customers/cus_x?expand[]=sources",
        "/v3/customers/cus_x",
        "/internal/customers/cus_x",
        "",
    ],
)
def test_a_related_object_url_that_is_no_stripe_api_path_is_refused_at_the_door(client, url):
    thin = notification("v1.customer.updated", "cus_x", "customer", "customers")
    thin["related_object"]["url"] = url

    response = post_thin(client, thin)

    assert response.status_code == 400
    assert "related_object.url is no Stripe API path" in response.json()["error"]
    assert not StripeEvent.objects.exists()
    assert not Job.objects.exists()


def test_a_v2_related_object_path_is_accepted(client):
    thin = notification("v2.core.account.updated", "acct_x", "v2.core.account", "core/accounts")
    thin["related_object"]["url"] = "/v2/core/accounts/acct_x"

    assert post_thin(client, thin).status_code == 200
