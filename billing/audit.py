"""The audit trail of billing rows: who (a Stripe event, or a named step) changed what."""

from __future__ import annotations

from typing import Any

from django.db import models

from billing.models import ActivityLog, Customer, StripeEvent


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _customer_of(obj: models.Model) -> Customer | None:
    if isinstance(obj, Customer):
        return obj
    return getattr(obj, "customer", None)


def audit(
    cause: StripeEvent | str,
    obj: models.Model,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    customer: Customer | None = None,
) -> None:
    """Record that `cause` (a Stripe event, or a named step) changed `obj` from before to after."""
    ActivityLog.objects.create(
        customer=customer or _customer_of(obj),
        stripe_event_id=cause.stripe_id if isinstance(cause, StripeEvent) else cause,
        object_type=obj._meta.model_name,
        object_id=str(getattr(obj, "stripe_id", obj.pk)),
        action=action,
        before={key: _plain(value) for key, value in before.items()},
        after={key: _plain(value) for key, value in after.items()},
    )
