"""Handlers for customer.* events, and linking a customer to the user who owns it."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from billing.audit import audit
from billing.entitlements import invalidate_entitlements
from billing.handlers.payload import data_object
from billing.handlers.sync import apply_newer
from billing.models import Customer, StripeEvent
from jobs.errors import PermanentError


def link_user(customer: Customer, user_id: str, event: StripeEvent) -> None:
    """Make `user_id` the owner of `customer` (once); the user must exist, else retry later."""
    if not user_id.isdigit():
        raise PermanentError(f"user id {user_id!r} is not a number")
    user = get_user_model().objects.get(pk=int(user_id))
    if customer.user_id == user.pk:
        return
    if customer.user_id is not None:
        raise PermanentError(f"{customer.stripe_id} already belongs to user {customer.user_id}")
    customer.user = user
    customer.save(update_fields=["user", "updated_at"])
    audit(event, customer, "customer.linked_to_user", {"user_id": None}, {"user_id": user.pk})
    invalidate_entitlements(customer)


def customer_upserted(event: StripeEvent) -> None:
    """customer.created / customer.updated: mirror email and name; link the user if named."""
    customer = data_object(event)
    if customer.get("deleted"):
        customer_deleted(event)  # fetched from the API: deleted at Stripe meanwhile
        return
    values = {
        "email": customer.get("email") or "",
        "name": customer.get("name") or "",
        "deleted": False,
    }
    row, applied = apply_newer(Customer, customer["id"], event, values, event.type)
    user_id = (customer.get("metadata") or {}).get("user_id")
    if applied and user_id:
        link_user(row, str(user_id), event)


def customer_deleted(event: StripeEvent) -> None:
    """customer.deleted: keep the row (invoices point at it), flag it deleted."""
    customer = data_object(event)
    values = {"deleted": True}
    if customer.get("email"):
        values["email"] = customer["email"]
    row, applied = apply_newer(Customer, customer["id"], event, values, event.type)
    if applied:
        invalidate_entitlements(row)
