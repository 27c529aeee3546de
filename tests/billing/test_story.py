"""Two customers' billing stories through the real pipeline: webhook, jobs, handlers, emails."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from billing.models import (
    ActivityLog,
    DunningCase,
    Invoice,
    Payment,
    StripeEvent,
    Subscription,
)
from mail.models import Email
from tests.billing import story
from tests.billing.helpers import deliver, drain, run_at, sent, snapshot

pytestmark = pytest.mark.django_db
AFTER_ALL = story.at(story.END) + timedelta(days=30)
PAYMENT_INTENT_STATUSES = {
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "canceled",
    "succeeded",
}
SUBSCRIPTION_STATUSES = {
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
}
INVOICE_STATUSES = {"draft", "open", "paid", "uncollectible", "void"}


def when(seconds: int) -> datetime:
    return story.at(seconds)


EXPECTED_STATE = {
    "customers": [
        ("cus_ann", "ann", "ann@example.com", "Ann", False),
        ("cus_bob", "bob", "bob@example.com", "Bob", False),
    ],
    "subscriptions": [
        (
            "sub_ann",
            "cus_ann",
            "canceled",
            "price_basic",
            "basic",
            1,
            None,
            when(30 * story.DAY),
            True,
            when(60 * story.DAY),
        ),
        (
            "sub_bob",
            "cus_bob",
            "active",
            "price_pro",
            "pro",
            1,
            when(14 * story.DAY),
            when(44 * story.DAY),
            False,
            None,
        ),
    ],
    "invoices": [
        (
            "in_ann1",
            "cus_ann",
            "sub_ann",
            "paid",
            900,
            900,
            "eur",
            1,
            "https://invoice.stripe.test/in_ann1",
        ),
        (
            "in_ann2",
            "cus_ann",
            "sub_ann",
            "paid",
            900,
            900,
            "eur",
            2,
            "https://invoice.stripe.test/in_ann2",
        ),
        (
            "in_bob1",
            "cus_bob",
            "sub_bob",
            "paid",
            2900,
            2900,
            "eur",
            1,
            "https://invoice.stripe.test/in_bob1",
        ),
    ],
    "payments": [
        ("pi_ann1", "cus_ann", "ch_ann1", 900, 0, False, "succeeded"),
        ("pi_bob_w1", "cus_bob", "ch_bob_w1", 5000, 0, False, "succeeded"),
        ("pi_bob_w2", "cus_bob", "ch_bob_w2", 2000, 2000, True, "succeeded"),
    ],
    "payment_methods": [("pm_ann", "cus_ann", "visa", False)],
    "wallets": [("cus_bob", "eur", 5000)],  # 5000 + 2000 top-ups, less the 2000 refunded
    "top_ups": [("pi_bob_w1", 5000), ("pi_bob_w2", 2000)],
    "refunded": [("ch_bob_w2", -2000)],
}

# Emails of the story lived in time: the failed renewal is mailed at once and reminded on
# day 3, before Ann pays on day 5.
STORY_EMAILS = sorted(
    [
        ("ann@example.com", "Your subscription is confirmed"),
        ("bob@example.com", "Your subscription is confirmed"),
        ("ann@example.com", "Receipt for your payment"),  # in_ann1, paid + payment_succeeded
        ("ann@example.com", "Your payment failed"),
        ("ann@example.com", "Reminder: your invoice is still unpaid"),
        ("ann@example.com", "Receipt for your payment"),  # in_ann2
        ("ann@example.com", "Your subscription has been canceled"),
        ("bob@example.com", "Your trial ends soon"),
        ("bob@example.com", "Receipt for your payment"),
    ]
)
# Delivered all at once (after an outage, or by a backfill), the failed renewal is already
# paid when its email would go out: the payment-failed and reminder emails are skipped.
LATE_EMAILS = [
    email
    for email in STORY_EMAILS
    if email[1] not in {"Your payment failed", "Reminder: your invoice is still unpaid"}
]


def test_story_lived_in_order_ends_in_the_expected_state_and_emails(
    client, mailbox, fake_stripe, people
):
    ann, bob = people
    for event in story.events(ann.pk, bob.pk):
        moment = datetime.fromtimestamp(event["created"], tz=UTC)
        drain(until=moment)
        deliver(client, event, moment)
        run_at(moment)
    drain(until=AFTER_ALL)

    assert snapshot() == EXPECTED_STATE
    assert sent(mailbox) == STORY_EMAILS
    # Each status column holds a value Stripe itself sends for that object (API 2026-10-28).
    assert set(Payment.objects.values_list("status", flat=True)) <= PAYMENT_INTENT_STATUSES
    assert set(Subscription.objects.values_list("status", flat=True)) <= SUBSCRIPTION_STATUSES
    assert set(Invoice.objects.values_list("status", flat=True)) <= INVOICE_STATUSES
    statuses = dict(StripeEvent.objects.values_list("stripe_id", "status"))
    assert {status for stripe_id, status in statuses.items() if stripe_id != "evt_story_021"} == {
        "processed"
    }
    assert statuses["evt_story_021"] == "ignored"  # balance.available: no handler
    case = DunningCase.objects.get()
    assert (case.invoice.stripe_id, case.status) == ("in_ann2", "paid")
    assert fake_stripe.canceled == []  # paid before day 10: nobody called Stripe to cancel


def test_every_change_is_in_the_audit_trail_with_its_event(client, mailbox, fake_stripe, people):
    ann, bob = people
    for event in story.events(ann.pk, bob.pk):
        deliver(client, event)
        run_at(datetime.fromtimestamp(event["created"], tz=UTC))

    canceled = ActivityLog.objects.get(object_id="sub_ann", action="customer.subscription.deleted")
    assert canceled.stripe_event_id == "evt_story_027"
    assert (canceled.before["status"], canceled.after["status"]) == ("active", "canceled")
    assert canceled.customer.stripe_id == "cus_ann"
    debits = ActivityLog.objects.filter(action="wallet.debited").order_by("id")
    assert [log.after["amount"] for log in debits] == [-500, -1500]


@pytest.mark.parametrize("seed", [None, 1, 2, 3, 4])
def test_story_shuffled_and_duplicated_converges_to_the_same_state_and_emails_once(
    client, mailbox, fake_stripe, people, seed
):
    ann, bob = people
    deliveries = story.events(ann.pk, bob.pk)
    if seed is not None:
        rng = random.Random(seed)
        deliveries = [event for event in deliveries for _ in range(rng.randint(1, 3))]
        rng.shuffle(deliveries)

    for event in deliveries:
        deliver(client, event, story.at(story.END))
    drain(until=AFTER_ALL)

    assert snapshot() == EXPECTED_STATE
    assert sent(mailbox) == LATE_EMAILS
    assert StripeEvent.objects.count() == 28
    assert Email.objects.filter(status="sent").count() == len(LATE_EMAILS)
    assert fake_stripe.canceled == []
