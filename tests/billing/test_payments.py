"""Payments and the wallet: statuses as Stripe has them, the top-up safety net, failure alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.models import Payment, WalletTransaction
from tests.billing.conftest import make_event
from tests.billing.helpers import deliver, drain
from tests.billing.test_story import PAYMENT_INTENT_STATUSES

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TOP_UP = {"wallet_top_up": "true"}


def at(moment: datetime) -> int:
    return int(moment.timestamp())


def intent(status: str = "succeeded", metadata: dict | None = None, **extra) -> dict:
    return {
        "id": "pi_dee",
        "object": "payment_intent",
        "customer": "cus_dee",
        "amount": 3000,
        "amount_received": 3000 if status == "succeeded" else 0,
        "currency": "eur",
        "status": status,
        "latest_charge": "ch_dee",
        "metadata": metadata if metadata is not None else {},
        **extra,
    }


def charge(refunded: int) -> dict:
    return {
        "id": "ch_dee",
        "object": "charge",
        "customer": "cus_dee",
        "payment_intent": "pi_dee",
        "amount": 3000,
        "amount_refunded": refunded,
        "refunded": refunded == 3000,
        "currency": "eur",
        "status": "succeeded",
        "metadata": {},
    }


def top_up_session() -> dict:
    return {
        "id": "cs_dee",
        "object": "checkout.session",
        "mode": "payment",
        "customer": "cus_dee",
        "payment_status": "paid",
        "status": "complete",
        "amount_total": 3000,
        "currency": "eur",
        "payment_intent": "pi_dee",
        "metadata": TOP_UP,
    }


def tell(client, *events: tuple[str, dict, int]) -> None:
    """Deliver (type, object, seconds after T0) events, then run everything they cause."""
    for kind, obj, offset in events:
        moment = T0 + timedelta(seconds=offset)
        deliver(client, make_event(kind, obj, created=at(moment)), moment)
    drain(until=T0 + timedelta(hours=1))


def balance() -> int:
    return sum(WalletTransaction.objects.values_list("amount", flat=True))


@pytest.mark.parametrize("refunded", [1000, 3000])
def test_a_refund_keeps_the_payment_succeeded_and_records_what_was_refunded(client, refunded):
    tell(
        client,
        ("payment_intent.succeeded", intent(), 0),
        ("charge.refunded", charge(refunded), 60),
    )

    payment = Payment.objects.get()
    assert (payment.status, payment.amount_refunded, payment.refunded) == (
        "succeeded",
        refunded,
        refunded == 3000,
    )
    assert payment.status in PAYMENT_INTENT_STATUSES


def test_a_refund_processed_before_its_payment_still_ends_succeeded(client):
    tell(
        client,
        ("charge.refunded", charge(1000), 60),
        ("payment_intent.succeeded", intent(), 0),
    )

    payment = Payment.objects.get()
    assert (payment.status, payment.amount, payment.amount_refunded) == ("succeeded", 3000, 1000)


def test_a_top_up_whose_checkout_event_was_lost_is_credited_from_the_payment_intent(client):
    tell(client, ("payment_intent.succeeded", intent(metadata=TOP_UP), 1))

    credit = WalletTransaction.objects.get()
    assert (credit.kind, credit.amount, credit.currency) == ("top_up", 3000, "eur")
    assert (credit.customer.stripe_id, credit.source) == ("cus_dee", "pi_dee")


@pytest.mark.parametrize("intent_first", [False, True])
def test_a_top_up_told_by_both_events_is_credited_once(client, intent_first):
    events = [
        ("checkout.session.completed", top_up_session(), 0),
        ("payment_intent.succeeded", intent(metadata=TOP_UP), 1),
    ]
    tell(client, *(reversed(events) if intent_first else events))

    assert WalletTransaction.objects.count() == 1
    assert balance() == 3000


def test_a_payment_intent_without_top_up_metadata_credits_nothing(client):
    tell(client, ("payment_intent.succeeded", intent(), 1))

    assert not WalletTransaction.objects.exists()


def test_a_failed_top_up_payment_alerts_staff_once(client, mailbox, settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    failed = intent(
        "requires_payment_method",
        metadata=TOP_UP,
        last_payment_error={"code": "card_declined", "message": "Your card was declined."},
    )
    event = make_event("payment_intent.payment_failed", failed, created=at(T0))
    deliver(client, event, T0)
    deliver(client, event, T0)  # a duplicate delivery
    drain(until=T0 + timedelta(hours=1))

    alerts = [message for message in mailbox if message.to == ["ops@example.com"]]
    assert len(alerts) == 1
    assert "pi_dee" in alerts[0].subject
    assert "cus_dee" in alerts[0].body and "card_declined" in alerts[0].body
    assert not WalletTransaction.objects.exists()


def test_a_failed_payment_that_is_not_a_top_up_alerts_nobody(client, mailbox, settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    tell(client, ("payment_intent.payment_failed", intent("requires_payment_method"), 0))

    assert [message for message in mailbox if message.to == ["ops@example.com"]] == []


def test_a_storm_of_failed_top_ups_alerts_once_then_sums_up_the_window(client, mailbox, settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.ALERT_WINDOW_SECONDS = 300
    for number in range(4):  # card testing: many declines in a few seconds
        failed = {
            **intent("requires_payment_method", metadata=TOP_UP),
            "id": f"pi_storm_{number}",
            "last_payment_error": {"code": "card_declined", "message": "declined"},
        }
        moment = T0 + timedelta(seconds=number)
        deliver(client, make_event("payment_intent.payment_failed", failed, created=at(moment)))
    drain(until=T0 + timedelta(minutes=4))
    alerts = [message.subject for message in mailbox if message.to == ["ops@example.com"]]
    assert len(alerts) == 1 and "pi_storm_0" in alerts[0]

    drain(until=T0 + timedelta(minutes=10))

    alerts = [message for message in mailbox if message.to == ["ops@example.com"]]
    assert len(alerts) == 2
    assert "3 more wallet top-up payments failed" in alerts[1].subject
    assert all(f"pi_storm_{number}" in alerts[1].body for number in (1, 2, 3))
