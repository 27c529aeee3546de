"""Order-safe, audited writes of Stripe state: the one way handlers change billing rows.

Stripe delivers at least once and in any order. Each mirrored row keeps the `created` time of
the newest event applied to it; an older event leaves the row alone, so replays and shuffles
converge on the state of the newest event. Every change writes an ActivityLog row.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models

from billing.models import ActivityLog, Customer, StripeEvent

M = TypeVar("M", bound=models.Model)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _customer_of(obj: models.Model) -> Customer | None:
    if isinstance(obj, Customer):
        return obj
    return getattr(obj, "customer", None)


def audit(
    event: StripeEvent,
    obj: models.Model,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    """Record that `event` changed `obj` from `before` to `after`."""
    ActivityLog.objects.create(
        customer=_customer_of(obj),
        stripe_event_id=event.stripe_id,
        object_type=obj._meta.model_name,
        object_id=str(getattr(obj, "stripe_id", obj.pk)),
        action=action,
        before={key: _plain(value) for key, value in before.items()},
        after={key: _plain(value) for key, value in after.items()},
    )


def ensure_customer(stripe_id: str) -> Customer:
    """The customer with this Stripe id, created as a stub when no event about it came yet."""
    customer, _ = Customer.objects.get_or_create(stripe_id=stripe_id)
    return customer


def apply_newer(
    model: type[M],
    stripe_id: str,
    event: StripeEvent,
    values: dict[str, Any],
    action: str,
) -> tuple[M, bool]:
    """Set `values` on the row for `stripe_id` unless a newer event already did; audit it.

    Returns the row (locked for this transaction) and whether the event was applied. A row
    that does not exist yet is created. Equal `created` times apply (the later one processed
    wins): Stripe stamps seconds, so two events of one object may tie.
    """
    row, created = model.objects.select_for_update().get_or_create(stripe_id=stripe_id)
    if not created and row.stripe_event_created and row.stripe_event_created > event.created:
        return row, False
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for field, value in values.items():
        attname = model._meta.get_field(field).attname
        current = getattr(row, attname)
        new = value.pk if isinstance(value, models.Model) else value
        if current != new:
            before[attname], after[attname] = current, new
        setattr(row, field, value)
    row.stripe_event_created = event.created
    row.save()
    if after:
        audit(event, row, action, {} if created else before, after)
    return row, True
