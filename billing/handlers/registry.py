"""Event type -> handler. A type not listed here is stored and marked ignored."""

from __future__ import annotations

from collections.abc import Callable

from billing.handlers import checkout, customer, invoice, payment, subscription
from billing.models import StripeEvent

Handler = Callable[[StripeEvent], None]

HANDLERS: dict[str, Handler] = {
    "customer.created": customer.customer_upserted,
    "customer.updated": customer.customer_upserted,
    "customer.deleted": customer.customer_deleted,
    "customer.subscription.created": subscription.subscription_changed,
    "customer.subscription.updated": subscription.subscription_changed,
    "customer.subscription.paused": subscription.subscription_changed,
    "customer.subscription.resumed": subscription.subscription_changed,
    "customer.subscription.deleted": subscription.subscription_deleted,
    "customer.subscription.trial_will_end": subscription.trial_will_end,
    "invoice.paid": invoice.invoice_paid,
    "invoice.payment_succeeded": invoice.invoice_paid,
    "invoice.payment_failed": invoice.invoice_payment_failed,
    "checkout.session.completed": checkout.checkout_completed,
    "checkout.session.expired": checkout.checkout_expired,
    "payment_intent.succeeded": payment.payment_intent_changed,
    "payment_intent.payment_failed": payment.payment_intent_changed,
    "charge.refunded": payment.charge_refunded,
    "payment_method.attached": payment.payment_method_attached,
    "payment_method.detached": payment.payment_method_detached,
}


def handler_for(event_type: str) -> Handler | None:
    """The function that applies events of this type, or None when we do not handle it."""
    return HANDLERS.get(event_type)
