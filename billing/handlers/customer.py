"""Handlers for customer.* events."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from billing.handlers.payload import data_object
from billing.handlers.sync import apply_newer
from billing.models import Customer, StripeEvent


def _user_id_from_metadata(customer: dict) -> int | None:
    raw = (customer.get("metadata") or {}).get("user_id")
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


def customer_upserted(event: StripeEvent) -> None:
    """customer.created / customer.updated: mirror email and name; link the user if named."""
    customer = data_object(event)
    values = {
        "email": customer.get("email") or "",
        "name": customer.get("name") or "",
        "deleted": bool(customer.get("deleted", False)),
    }
    row, applied = apply_newer(Customer, customer["id"], event, values, event.type)
    user_id = _user_id_from_metadata(customer)
    if applied and user_id and row.user_id is None:
        # A customer made by our checkout carries its user's id; the user must exist.
        user = get_user_model().objects.get(pk=user_id)
        Customer.objects.filter(pk=row.pk, user__isnull=True).update(user=user)


def customer_deleted(event: StripeEvent) -> None:
    """customer.deleted: keep the row (invoices point at it), flag it deleted."""
    customer = data_object(event)
    values = {"deleted": True}
    if customer.get("email"):
        values["email"] = customer["email"]
    apply_newer(Customer, customer["id"], event, values, event.type)
