"""Handlers for checkout.session.* events: who the customer is, and wallet top-ups."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from billing.audit import audit
from billing.emails import money
from billing.handlers.customer import link_user
from billing.handlers.payload import data_object, ref
from billing.handlers.sync import ensure_customer, ensure_subscription
from billing.models import ActivityLog, Customer, StripeEvent, Subscription, WalletTransaction
from jobs.errors import PermanentError
from mail.services import queue_email

TRUE = {"true", "1", "yes"}


def is_wallet_top_up(metadata: dict[str, Any] | None) -> bool:
    """Our checkout marks wallet top-ups with metadata wallet_top_up=true."""
    return str((metadata or {}).get("wallet_top_up", "")).lower() in TRUE


def top_up_problem(amount: Any, currency: str) -> str | None:
    """Why a paid top-up is not one we sell (amount in minor units), or None when it is."""
    expected = settings.BILLING_TOP_UP_CURRENCY
    low, high = settings.BILLING_TOP_UP_MIN, settings.BILLING_TOP_UP_MAX
    if (currency or "").lower() != expected:
        return f"currency {currency!r} is not the top-up currency {expected!r}"
    if not isinstance(amount, int) or isinstance(amount, bool) or not low <= amount <= high:
        return f"amount {amount!r} is outside the top-up bounds {low}..{high} {expected}"
    return None


def credit_top_up(
    customer: Customer,
    payment_intent_id: str,
    amount: int,
    currency: str,
    event: StripeEvent,
) -> None:
    """Credit a paid wallet top-up once, keyed by its payment intent.

    Both checkout.session.completed and payment_intent.succeeded (the safety net for a lost
    checkout event) call this with the same payment intent: whichever comes first credits,
    the other finds the row.

    Only what we sell is credited: BILLING_TOP_UP_MIN..MAX in BILLING_TOP_UP_CURRENCY (our
    checkout asks for nothing else). Anything else is a PermanentError naming what is wrong:
    the event is dead at once, which alerts staff, and the wallet is not touched.
    """
    problem = top_up_problem(amount, currency)
    if problem:
        raise PermanentError(f"wallet top-up {payment_intent_id} not credited: {problem}")
    credit, created = WalletTransaction.objects.get_or_create(
        source=payment_intent_id,
        defaults={
            "customer": customer,
            "kind": WalletTransaction.Kind.TOP_UP,
            "amount": amount,
            "currency": currency,
            "payment_intent_id": payment_intent_id,
            "stripe_event_id": event.stripe_id,
        },
    )
    if created:
        audit(event, credit, "wallet.credited", {}, {"amount": credit.amount})


def _credit_wallet(session: dict[str, Any], customer: Customer, event: StripeEvent) -> None:
    if session.get("payment_status") != "paid":
        return
    # A paid payment-mode session always names its intent; the session id is a last resort.
    intent_id = ref(session.get("payment_intent")) or session["id"]
    credit_top_up(
        customer, intent_id, session.get("amount_total"), session.get("currency") or "", event
    )


def _confirm_subscription(
    session: dict[str, Any], subscription: Subscription, customer: Customer, event: StripeEvent
) -> None:
    """Log that the subscription was created and confirm it by email, once per subscription.

    The customer row is locked by the caller, so two sessions naming one subscription take
    turns here and the second finds the activity row.
    """
    logged = ActivityLog.objects.filter(
        object_type="subscription", object_id=subscription.stripe_id, action="subscription.created"
    )
    if logged.exists():
        return
    amount = session.get("amount_total")
    after = {"checkout_session": session["id"], "amount_total": amount}
    audit(event, subscription, "subscription.created", {}, after, customer=customer)
    queue_email(
        f"subscription:{subscription.stripe_id}",
        "subscription_created",
        customer=customer,
        context={
            "plan": subscription.plan,
            "amount": money(amount, session.get("currency") or "") if amount else "",
            "billing_url": f"{settings.SITE_URL.rstrip('/')}/billing/",
        },
    )


def checkout_completed(event: StripeEvent) -> None:
    """Link the customer to our user (subscriptions) or credit the wallet (top-ups), once."""
    session = data_object(event)
    customer_id = ref(session.get("customer"))
    if customer_id is None:
        raise PermanentError("checkout session without a customer: we create sessions with one")
    customer = Customer.objects.select_for_update(no_key=True).get(
        pk=ensure_customer(customer_id).pk
    )
    metadata = session.get("metadata") or {}
    user_id = session.get("client_reference_id") or metadata.get("user_id")
    if user_id:
        link_user(customer, str(user_id), event)
    if session.get("mode") == "subscription" and ref(session.get("subscription")):
        subscription = ensure_subscription(ref(session["subscription"]), customer)
        _confirm_subscription(session, subscription, customer, event)
    elif session.get("mode") == "payment" and is_wallet_top_up(metadata):
        _credit_wallet(session, customer, event)


def checkout_expired(event: StripeEvent) -> None:
    """An abandoned checkout: recorded in the customer's activity, nothing else changes."""
    session = data_object(event)
    customer_id = ref(session.get("customer"))
    ActivityLog.objects.create(
        customer=ensure_customer(customer_id) if customer_id else None,
        stripe_event_id=event.stripe_id,
        object_type="checkout_session",
        object_id=session["id"],
        action="checkout.expired",
        after={"mode": session.get("mode") or "", "amount_total": session.get("amount_total")},
    )
