"""Handlers for invoice.* events: mirror the invoice, receipts, open and close dunning."""

from __future__ import annotations

from billing.dunning import close_case, open_case, step_cause
from billing.emails import money
from billing.handlers.payload import data_object, invoice_subscription_id, ref, when
from billing.handlers.refetch import event_of
from billing.handlers.sync import apply_newer, ensure_customer, ensure_subscription
from billing.models import DunningCase, Invoice, StripeEvent
from billing.stripe_api import retrieve
from mail.services import queue_email


def upsert_invoice(event: StripeEvent) -> Invoice:
    """Mirror the invoice in the event unless newer state is already applied."""
    invoice = data_object(event)
    customer = ensure_customer(ref(invoice["customer"]))
    subscription_id = invoice_subscription_id(invoice)
    values = {
        "customer": customer,
        "subscription": ensure_subscription(subscription_id, customer) if subscription_id else None,
        "status": invoice.get("status") or "",
        "amount_due": invoice.get("amount_due") or 0,
        "amount_paid": invoice.get("amount_paid") or 0,
        "currency": invoice.get("currency") or "",
        "attempt_count": invoice.get("attempt_count") or 0,
        "next_payment_attempt": when(invoice.get("next_payment_attempt")),
        "hosted_invoice_url": invoice.get("hosted_invoice_url") or "",
    }
    row, _applied = apply_newer(Invoice, invoice["id"], event, values, event.type)
    return row


def invoice_paid(event: StripeEvent) -> None:
    """invoice.paid / invoice.payment_succeeded: close dunning, send one receipt."""
    row = upsert_invoice(event)
    close_case(row, event)
    invoice = data_object(event)
    queue_email(
        f"invoice:{row.stripe_id}",
        "receipt",
        customer=row.customer,
        context={
            "invoice": row.stripe_id,
            "number": invoice.get("number") or row.stripe_id,
            "amount": money(invoice.get("amount_paid") or 0, invoice.get("currency") or ""),
            "hosted_invoice_url": invoice.get("hosted_invoice_url") or "",
        },
    )


def invoice_payment_failed(event: StripeEvent) -> None:
    """invoice.payment_failed: open the dunning case (its day-0 email says it failed)."""
    open_case(upsert_invoice(event), event)


def paid_at_stripe(case_id: int, day: int) -> bool:
    """Before a dunning case cancels: re-read its invoice at Stripe and, when it is paid,
    apply that as its invoice.paid.

    The invoice.paid event may have been lost: cancelling on our copy alone would cancel a
    customer who paid. Applying the fetched invoice closes the case and sends the receipt the
    lost event would have (once: a late invoice.paid finds both done).
    """
    invoice_id, status = DunningCase.objects.values_list("invoice__stripe_id", "status").get(
        pk=case_id
    )
    if status != DunningCase.Status.OPEN:
        return False  # the step sees it closed and does nothing
    current = retrieve("invoice", invoice_id)
    if current is None or current.get("status") != "paid":
        return False
    invoice_paid(event_of(step_cause(invoice_id, day), "invoice.paid", current))
    return True
