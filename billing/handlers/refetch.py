"""Applying an object's current state, fetched from the API, through the ordinary handlers.

Used where the copy in an event is not enough: the day-10 dunning step re-reads an invoice,
STRIPE_REFETCH_OBJECTS re-reads the object of every event, and thin events carry none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from billing.models import StripeEvent


def event_of(
    cause: str, event_type: str, obj: dict[str, Any], created: datetime | None = None
) -> StripeEvent:
    """An unsaved event of `event_type` about `obj`, as a handler reads one.

    `created` is the watermark the state is applied with: by default now, since a state just
    fetched is at least as new as every event Stripe sent before the fetch.
    """
    return StripeEvent(
        stripe_id=cause,
        type=event_type,
        created=created or timezone.now(),
        payload={"object": "event", "id": cause, "type": event_type, "data": {"object": obj}},
    )
