"""Handlers for payment_intent.*, charge.refunded and payment_method.* events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from billing.audit import audit
from billing.emails import money
from billing.handlers.checkout import credit_top_up, is_wallet_top_up
from billing.handlers.payload import data_object, dig, ref
from billing.handlers.sync import apply_newer, ensure_customer
from billing.models import (
    ActivityLog,
    Customer,
    Payment,
    PaymentMethod,
    StripeEvent,
    WalletTransaction,
)
from jobs.backend import task_named
from jobs.errors import PermanentError


class RefundBeforeCredit(Exception):
    """A top-up's refund processed before its credit: retried (the jobs layer backs off)."""


TOP_UP_FAILED = "wallet.top_up_failed"


def _customer(obj: dict) -> Customer | None:
    customer_id = ref(obj.get("customer"))
    return ensure_customer(customer_id) if customer_id else None


def payment_intent_changed(event: StripeEvent) -> None:
    """payment_intent.succeeded / payment_failed: mirror the payment's amount and status.

    A top-up's intent (metadata wallet_top_up=true, set by our checkout) also credits the
    wallet when it succeeded, and alerts staff when it failed.
    """
    intent = data_object(event)
    customer = _customer(intent)
    values = {
        "customer": customer,
        "amount": intent.get("amount") or 0,
        "currency": intent.get("currency") or "",
        "status": intent.get("status") or "",
        "charge_id": ref(intent.get("latest_charge")) or "",
    }
    apply_newer(Payment, intent["id"], event, values, event.type)
    if not is_wallet_top_up(intent.get("metadata")):
        return
    # By the intent's status, not the event's type: a refetched intent may have succeeded
    # since it failed (a retry with another card), and then there is nothing to alert about.
    if intent.get("status") == "succeeded" and customer is not None:
        received = intent.get("amount_received") or intent.get("amount") or 0
        credit_top_up(customer, intent["id"], received, values["currency"], event)
    elif event.type == "payment_intent.payment_failed":
        _alert_top_up_failed(intent, event)


def _alert_top_up_failed(intent: dict, event: StripeEvent) -> None:
    """Tell staff through the dead-job alert path, rate-limited the same way.

    The failure is audited; the first of a window (ALERT_WINDOW_SECONDS, aligned to the
    clock) alerts at once, the others of the window are summed up when it ends. A storm of
    declines (card testing) sends two messages per window, never hundreds. The unique keys of
    the two jobs make the window: no shared row to lock.
    """
    error = intent.get("last_payment_error") or {}
    reason = f"{error.get('code') or error.get('type') or 'unknown'}: {error.get('message', '')}"
    amount = money(intent.get("amount") or 0, intent.get("currency") or "")
    customer_id = ref(intent.get("customer")) or ""
    audit(
        event,
        Payment.objects.get(stripe_id=intent["id"]),
        TOP_UP_FAILED,
        {},
        {"payment_intent": intent["id"], "amount": amount, "error": reason},
    )
    length = max(settings.ALERT_WINDOW_SECONDS, 1)
    now = int(timezone.now().timestamp())
    start = datetime.fromtimestamp(now - now % length, tz=UTC)
    # By name: billing.tasks imports this module.
    alert_top_up_failed = task_named("billing.tasks.alert_top_up_failed")
    alert_top_up_failures_summary = task_named("billing.tasks.alert_top_up_failures_summary")
    alert_top_up_failed.using(
        unique_key=f"top-up-failed:{start.isoformat()}", target=f"billing.payment:{intent['id']}"
    ).enqueue(
        payment_intent_id=intent["id"],
        customer_id=customer_id,
        amount=amount,
        error=reason,
        stripe_event_id=event.stripe_id,
    )
    alert_top_up_failures_summary.using(
        run_after=start + timedelta(seconds=length),
        unique_key=f"top-up-failed-summary:{start.isoformat()}",
    ).enqueue(window_start=start.isoformat(), seconds=length)


def top_up_failures(window_start: datetime, seconds: int) -> list[ActivityLog]:
    """The top-up failures audited in a window, oldest first."""
    return list(
        ActivityLog.objects.filter(
            action=TOP_UP_FAILED,
            created_at__gte=window_start,
            created_at__lt=window_start + timedelta(seconds=seconds),
        ).order_by("created_at", "id")
    )


def _debit_refunds(charge: dict, payment: Payment, event: StripeEvent) -> None:
    """Debit the wallet up to the charge's cumulative refunded amount, never twice.

    charge.refunded carries the running total (amount_refunded); the wallet already holds
    debits for the earlier totals, so only the difference moves. The Payment row is locked by
    the caller, which serialises concurrent refund events of one charge.
    """
    already = -(
        WalletTransaction.objects.filter(
            charge_id=charge["id"], kind=WalletTransaction.Kind.REFUND
        ).aggregate(total=Sum("amount"))["total"]
        or 0
    )
    owed = (charge.get("amount_refunded") or 0) - already
    if owed <= 0 or payment.customer is None:
        return
    credited = (
        WalletTransaction.objects.filter(
            payment_intent_id=payment.stripe_id, kind=WalletTransaction.Kind.TOP_UP
        ).aggregate(total=Sum("amount"))["total"]
        or 0
    )
    if credited == 0:
        # Refunded before its credit arrived (events come in any order): debit after it, so
        # the wallet never shows a debit without the credit it takes back.
        raise RefundBeforeCredit(f"top-up {payment.stripe_id} refunded before it was credited")
    if already + owed > credited:
        # A wallet never goes negative: at most what this top-up credited is taken back.
        raise PermanentError(
            f"refund of {already + owed} on top-up {payment.stripe_id} exceeds its credit "
            f"of {credited}: not debited"
        )
    debit = WalletTransaction.objects.create(
        customer=payment.customer,
        kind=WalletTransaction.Kind.REFUND,
        amount=-owed,
        currency=charge.get("currency") or "",
        source=f"{charge['id']}:refunded:{charge['amount_refunded']}",
        payment_intent_id=payment.stripe_id,
        charge_id=charge["id"],
        stripe_event_id=event.stripe_id,
    )
    audit(event, debit, "wallet.debited", {}, {"amount": debit.amount})


def charge_refunded(event: StripeEvent) -> None:
    """charge.refunded: record the refunded amount; a wallet top-up's refund debits the wallet."""
    charge = data_object(event)
    intent_id = ref(charge.get("payment_intent")) or charge["id"]
    values = {
        "customer": _customer(charge),
        "charge_id": charge["id"],
        "amount": charge.get("amount") or 0,
        "amount_refunded": charge.get("amount_refunded") or 0,
        "refunded": bool(charge.get("refunded")),
        "currency": charge.get("currency") or "",
        # Only a succeeded payment has a charge to refund, and a refund leaves its intent
        # succeeded: Stripe has no "refunded" PaymentIntent status.
        "status": "succeeded",
    }
    payment, _applied = apply_newer(Payment, intent_id, event, values, event.type)
    top_up = WalletTransaction.objects.filter(
        payment_intent_id=intent_id, kind=WalletTransaction.Kind.TOP_UP
    ).exists()
    if top_up or is_wallet_top_up(charge.get("metadata")):
        _debit_refunds(charge, payment, event)


def payment_method_attached(event: StripeEvent) -> None:
    """payment_method.attached: the customer has this card now."""
    method = data_object(event)
    values = {
        "customer": _customer(method),
        "type": method.get("type") or "",
        "brand": dig(method, "card", "brand") or "",
        "last4": dig(method, "card", "last4") or "",
        "attached": True,
    }
    apply_newer(PaymentMethod, method["id"], event, values, event.type)


def payment_method_detached(event: StripeEvent) -> None:
    """payment_method.detached: the card is gone (the payload no longer names the customer)."""
    method = data_object(event)
    values = {
        "type": method.get("type") or "",
        "brand": dig(method, "card", "brand") or "",
        "last4": dig(method, "card", "last4") or "",
        "attached": False,
    }
    apply_newer(PaymentMethod, method["id"], event, values, event.type)
