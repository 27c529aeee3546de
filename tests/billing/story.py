"""A coherent billing story for two customers, as the Stripe events that tell it.

Ann pays on the previous API version's payload shapes (periods on the subscription, the
invoice's subscription at top level); Bob on the current ones (periods on items, the invoice's
subscription under `parent`). Times are seconds after START.

Ann: signs up, subscribes to basic, pays, a renewal fails (dunning), pays 5 days later,
asks to cancel at period end, is canceled. Bob: subscribes to pro with a trial, converts,
tops up his wallet twice, the second top-up is refunded in two steps, abandons a checkout.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

START = int(datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp())
DAY = 86400
LEGACY = "2024-06-20"
CURRENT = "2026-10-28.endive"
# Our checkout copies the top-up marker onto the payment intent (payment_intent_data.metadata).
TOP_UP = {"wallet_top_up": "true"}


def _event(number: int, kind: str, at: int, obj: dict[str, Any], version: str) -> dict:
    return {
        "id": f"evt_story_{number:03d}",
        "object": "event",
        "api_version": version,
        "created": START + at,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
        "data": {"object": obj},
    }


def _customer(cid: str, email: str, name: str) -> dict:
    return {"id": cid, "object": "customer", "email": email, "name": name, "metadata": {}}


def _ann_subscription(status: str, **extra: Any) -> dict:
    return {
        "id": "sub_ann",
        "object": "subscription",
        "customer": "cus_ann",
        "status": status,
        "current_period_end": START + 30 * DAY,
        "plan": {"id": "price_basic", "object": "plan", "nickname": "basic", "product": "prod_b"},
        "quantity": 1,
        "items": {"object": "list", "data": [{"id": "si_ann", "quantity": 1}]},
        "trial_end": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        **extra,
    }


def _bob_subscription(status: str, **extra: Any) -> dict:
    item = {
        "id": "si_bob",
        "quantity": 1,
        "current_period_end": START + 44 * DAY,
        "price": {"id": "price_pro", "object": "price", "lookup_key": "pro", "product": "prod_p"},
    }
    return {
        "id": "sub_bob",
        "object": "subscription",
        "customer": "cus_bob",
        "status": status,
        "items": {"object": "list", "data": [item]},
        "trial_end": START + 14 * DAY,
        "cancel_at_period_end": False,
        "canceled_at": None,
        **extra,
    }


def _ann_invoice(iid: str, status: str, paid: int, attempts: int) -> dict:
    return {
        "id": iid,
        "object": "invoice",
        "customer": "cus_ann",
        "subscription": "sub_ann",
        "status": status,
        "amount_due": 900,
        "amount_paid": paid,
        "currency": "eur",
        "attempt_count": attempts,
        "next_payment_attempt": None,
        "number": f"ANN-{iid[-1]}",
        "hosted_invoice_url": f"https://invoice.stripe.test/{iid}",
        "payment_intent": f"pi_{iid}",
    }


def _bob_invoice() -> dict:
    return {
        "id": "in_bob1",
        "object": "invoice",
        "customer": "cus_bob",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": "sub_bob"},
        },
        "status": "paid",
        "amount_due": 2900,
        "amount_paid": 2900,
        "currency": "eur",
        "attempt_count": 1,
        "next_payment_attempt": None,
        "number": "BOB-1",
        "hosted_invoice_url": "https://invoice.stripe.test/in_bob1",
    }


def _top_up(session: str, intent: str, amount: int) -> dict:
    return {
        "id": session,
        "object": "checkout.session",
        "mode": "payment",
        "customer": "cus_bob",
        "payment_status": "paid",
        "status": "complete",
        "amount_total": amount,
        "currency": "eur",
        "payment_intent": intent,
        "metadata": {"wallet_top_up": "true"},
    }


def _intent(iid: str, customer: str, amount: int, metadata: dict | None = None) -> dict:
    return {
        "id": iid,
        "object": "payment_intent",
        "customer": customer,
        "amount": amount,
        "currency": "eur",
        "status": "succeeded",
        "latest_charge": iid.replace("pi_", "ch_"),
        "metadata": metadata or {},
    }


def _refund(refunded: int) -> dict:
    return {
        "id": "ch_bob_w2",
        "object": "charge",
        "customer": "cus_bob",
        "payment_intent": "pi_bob_w2",
        "amount": 2000,
        "amount_refunded": refunded,
        "refunded": refunded == 2000,
        "currency": "eur",
        "status": "succeeded",
        "metadata": {"wallet_top_up": "true"},
    }


def events(ann_id: int, bob_id: int) -> list[dict]:
    """The story in the order Stripe would send it."""
    card = {"id": "pm_ann", "object": "payment_method", "type": "card", "customer": "cus_ann"}
    card["card"] = {"brand": "visa", "last4": "4242"}
    detached = {**card, "customer": None}
    bob_checkout = {
        "id": "cs_bob_sub",
        "object": "checkout.session",
        "mode": "subscription",
        "customer": "cus_bob",
        "subscription": "sub_bob",
        "client_reference_id": None,
        "metadata": {"user_id": str(bob_id)},
    }
    ann_checkout = {
        "id": "cs_ann_sub",
        "object": "checkout.session",
        "mode": "subscription",
        "customer": "cus_ann",
        "subscription": "sub_ann",
        "client_reference_id": str(ann_id),
        "metadata": {},
    }
    abandoned = {
        "id": "cs_bob_x",
        "object": "checkout.session",
        "mode": "payment",
        "customer": "cus_bob",
        "amount_total": 1000,
        "metadata": {"wallet_top_up": "true"},
    }
    story = [
        ("customer.created", 0, _customer("cus_ann", "ann@example.com", "Ann"), LEGACY),
        ("payment_method.attached", 59, card, LEGACY),
        ("checkout.session.completed", 60, ann_checkout, LEGACY),
        ("customer.subscription.created", 61, _ann_subscription("active"), LEGACY),
        ("invoice.paid", 62, _ann_invoice("in_ann1", "paid", 900, 1), LEGACY),
        ("invoice.payment_succeeded", 63, _ann_invoice("in_ann1", "paid", 900, 1), LEGACY),
        ("payment_intent.succeeded", 64, _intent("pi_ann1", "cus_ann", 900), LEGACY),
        ("customer.created", 100, _customer("cus_bob", "bob@example.com", "Bob"), CURRENT),
        ("checkout.session.completed", 160, bob_checkout, CURRENT),
        ("customer.subscription.created", 161, _bob_subscription("trialing"), CURRENT),
        ("customer.subscription.trial_will_end", 11 * DAY, _bob_subscription("trialing"), CURRENT),
        ("customer.subscription.updated", 14 * DAY, _bob_subscription("active"), CURRENT),
        ("invoice.paid", 14 * DAY + 1, _bob_invoice(), CURRENT),
        ("checkout.session.completed", 15 * DAY, _top_up("cs_bob_w1", "pi_bob_w1", 5000), CURRENT),
        (
            "payment_intent.succeeded",
            15 * DAY + 1,
            _intent("pi_bob_w1", "cus_bob", 5000, TOP_UP),
            CURRENT,
        ),
        ("checkout.session.completed", 16 * DAY, _top_up("cs_bob_w2", "pi_bob_w2", 2000), CURRENT),
        (
            "payment_intent.succeeded",
            16 * DAY + 1,
            _intent("pi_bob_w2", "cus_bob", 2000, TOP_UP),
            CURRENT,
        ),
        ("charge.refunded", 17 * DAY, _refund(500), CURRENT),
        ("charge.refunded", 18 * DAY, _refund(2000), CURRENT),
        ("checkout.session.expired", 19 * DAY, abandoned, CURRENT),
        ("balance.available", 20 * DAY, {"object": "balance", "available": []}, CURRENT),
        ("invoice.payment_failed", 30 * DAY, _ann_invoice("in_ann2", "open", 0, 1), LEGACY),
        ("customer.subscription.updated", 30 * DAY + 1, _ann_subscription("past_due"), LEGACY),
        ("invoice.paid", 35 * DAY, _ann_invoice("in_ann2", "paid", 900, 2), LEGACY),
        ("customer.subscription.updated", 35 * DAY + 1, _ann_subscription("active"), LEGACY),
        (
            "customer.subscription.updated",
            40 * DAY,
            _ann_subscription("active", cancel_at_period_end=True),
            LEGACY,
        ),
        (
            "customer.subscription.deleted",
            60 * DAY,
            _ann_subscription("canceled", cancel_at_period_end=True, canceled_at=START + 60 * DAY),
            LEGACY,
        ),
        ("payment_method.detached", 60 * DAY + 5, detached, LEGACY),
    ]
    return [
        _event(number, kind, at, obj, version)
        for number, (kind, at, obj, version) in enumerate(story, 1)
    ]


def at(seconds: int) -> datetime:
    """START + seconds, as an aware datetime."""
    return datetime.fromtimestamp(START + seconds, tz=UTC)


END = 61 * DAY
