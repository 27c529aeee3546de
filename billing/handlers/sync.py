"""Order-safe, audited writes of Stripe state: the one way handlers change billing rows.

Stripe delivers at least once and in any order. Each mirrored row keeps the `created` time of
the newest event applied to it; an older event leaves the row alone, so replays and shuffles
converge on the state of the newest event. Every change writes an ActivityLog row.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from django.db import connection, models

from billing.audit import audit
from billing.models import Customer, StripeEvent, Subscription
from jobs.sql import prepared_cursor

M = TypeVar("M", bound=models.Model)


def ensure_customer(stripe_id: str) -> Customer:
    """The customer with this Stripe id, created as a stub when no event about it came yet."""
    customer, _ = get_or_insert(Customer, stripe_id, {})
    return customer


def get_or_insert(
    model: type[M], stripe_id: str, defaults: dict[str, Any], *, lock: bool = False
) -> tuple[M, bool]:
    """The row for `stripe_id` (locked FOR NO KEY UPDATE with `lock`), inserted with
    `defaults` when there is none; and whether it was inserted.

    Django's get_or_create wraps its INSERT in a savepoint, two more round trips on every new
    object; INSERT ... ON CONFLICT DO NOTHING needs none: when a concurrent transaction
    inserted the row first, it waits for that one and then reads its row.
    """
    rows = model.objects.filter(stripe_id=stripe_id)
    if lock:
        rows = rows.select_for_update(no_key=True)
    row = next(iter(rows), None)
    if row is not None:
        return row, False
    row = _insert_unless_present(model(stripe_id=stripe_id, **defaults))
    if row is not None:
        return row, True
    return rows.get(), False


def _insert_unless_present(row: M) -> M | None:
    """INSERT the row unless its stripe_id is taken: the row saved, or None."""
    meta = row._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    values = [field.get_db_prep_save(field.pre_save(row, True), connection) for field in fields]
    quote = connection.ops.quote_name
    with prepared_cursor() as cursor:
        # Identifiers from the model's own meta, quoted; every value is a parameter.
        columns = ", ".join(quote(field.column) for field in fields)
        statement = (
            f"INSERT INTO {quote(meta.db_table)} ({columns})"  # noqa: S608
            f" VALUES ({', '.join(['%s'] * len(fields))})"
            f" ON CONFLICT (stripe_id) DO NOTHING RETURNING {quote(meta.pk.column)}"
        )
        cursor.execute(statement, values)
        inserted = cursor.fetchone()
    if inserted is None:
        return None
    row.pk = inserted[0]
    row._state.adding, row._state.db = False, connection.alias
    return row


def apply_newer(
    model: type[M],
    stripe_id: str,
    event: StripeEvent,
    values: dict[str, Any],
    action: str,
    fill: tuple[str, ...] = ("customer",),
) -> tuple[M, bool]:
    """Set `values` on the row for `stripe_id` unless a newer event already did; audit it.

    Returns the row (locked for this transaction) and whether the event was applied. A row
    that does not exist yet is created. An older event still fills the empty `fill` fields:
    who an object belongs to never changes, and a newer event may not say it (a detached
    payment method has no customer). Stripe stamps seconds, so two events of one object often
    share one `created` (a subscription created incomplete and updated to active as checkout
    completes): the rank of the event type settles those, and equal ranks apply in processing
    order.
    """
    rank = event_rank(event.type)
    watermark = {"stripe_event_created": event.created, "stripe_event_rank": rank}
    # FOR NO KEY UPDATE: we never change a key, and a plain FOR UPDATE would also block the
    # foreign-key checks of concurrent inserts pointing at this row (deadlocks, seen under load).
    # A new row is inserted with its values and watermark at once: no second write.
    row, created = get_or_insert(model, stripe_id, {**values, **watermark}, lock=True)
    if not created and _newer_applied(row, event, rank):
        _fill_in(row, event, values, fill, action)
        return row, False
    before, after = _assign(row, values, created)
    if not created:
        for field, value in watermark.items():
            setattr(row, field, value)
        # The row is locked: writing only what this event sets (and auto_now stamps) is the
        # same as a full save, with fewer columns to send.
        row.save(update_fields=[*values, *watermark, *_stamped_on_save(model)])
    if after:
        audit(event, row, action, {} if created else before, after)
    return row, True


def _newer_applied(row: models.Model, event: StripeEvent, rank: int) -> bool:
    """Whether the row holds the state of an event later than `event` (created, then rank)."""
    applied = row.stripe_event_created
    return bool(applied) and (applied, row.stripe_event_rank) > (event.created, rank)


def _assign(
    row: models.Model, values: dict[str, Any], created: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set `values` on the row; (before, after) of the columns that change, for the audit."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for field, value in values.items():
        attname = row._meta.get_field(field).attname
        current = None if created else getattr(row, attname)
        new = value.pk if isinstance(value, models.Model) else value
        if current != new:
            before[attname], after[attname] = current, new
        setattr(row, field, value)
    return before, after


@functools.cache
def _stamped_on_save(model: type[models.Model]) -> tuple[str, ...]:
    """The fields a save sets by itself (auto_now), which update_fields must name (per model,
    worked out once: this is on every handler's path)."""
    return tuple(
        field.name for field in model._meta.concrete_fields if getattr(field, "auto_now", False)
    )


# Within one second, which event type describes the later state of its object.
_RANK_BY_SUFFIX = {
    "created": 0,
    "attached": 1,
    "detached": 2,
    "payment_failed": 1,
    "paid": 2,
    "payment_succeeded": 2,
    "succeeded": 2,
    "refunded": 3,
    "deleted": 3,
}


def event_rank(event_type: str) -> int:
    """How late in its object's life an event type comes (1 for updates and the rest)."""
    return _RANK_BY_SUFFIX.get(event_type.rsplit(".", 1)[-1], 1)


def _fill_in(
    row: models.Model,
    event: StripeEvent,
    values: dict[str, Any],
    fill: tuple[str, ...],
    action: str,
) -> None:
    """Set the `fill` fields that are still empty on a row a newer event already wrote."""
    after = {}
    for field in fill:
        value = values.get(field)
        if value is None:
            continue
        attname = row._meta.get_field(field).attname
        if getattr(row, attname) is None:
            setattr(row, field, value)
            after[attname] = value.pk if isinstance(value, models.Model) else value
    if after:
        row.save(update_fields=list(after))
        audit(event, row, f"{action} (fill-in)", {}, after)


def ensure_subscription(stripe_id: str, customer: Customer) -> Subscription:
    """The subscription with this Stripe id, created as a stub when no event about it came yet."""
    subscription, _ = get_or_insert(Subscription, stripe_id, {"customer": customer})
    return subscription
