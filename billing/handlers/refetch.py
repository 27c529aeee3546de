"""Applying an object's current state, fetched from the API, through the ordinary handlers.

Used where the copy in an event is not enough: the day-10 dunning step re-reads an invoice,
STRIPE_REFETCH_OBJECTS re-reads the object of every event, and thin events carry none.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.utils import timezone

from billing.handlers.payload import data_object
from billing.models import StripeEvent
from billing.stripe_api import RETRIEVABLE, retrieve

logger = logging.getLogger(__name__)


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


def with_object(event: StripeEvent, obj: dict[str, Any], created: datetime) -> StripeEvent:
    """An unsaved copy of `event` about `obj`, applied with the watermark `created`."""
    payload = {**event.payload, "data": {**(event.payload.get("data") or {}), "object": obj}}
    return StripeEvent(
        pk=event.pk,
        stripe_id=event.stripe_id,
        type=event.type,
        api_version=event.api_version,
        livemode=event.livemode,
        created=created,
        payload=payload,
    )


def current(event: StripeEvent) -> StripeEvent:
    """The event with its object as the API has it now (STRIPE_REFETCH_OBJECTS).

    Applied with the time of the fetch as its watermark (or the event's, if later): the state
    read is at least as new as every event created before the request, and of two fetches the
    later one wins, so the order of delivery and processing no longer matters. An object
    Stripe no longer has is gone: a customer counts as deleted; anything else keeps the
    event's own copy (the best we know), under its own watermark.
    """
    obj = data_object(event)
    kind, object_id = obj.get("object"), obj.get("id")
    if kind not in RETRIEVABLE or not isinstance(object_id, str):
        return event
    fetched_at = timezone.now()
    found = retrieve(kind, object_id)
    if found is None and kind == "customer":
        found = {"id": object_id, "object": "customer", "deleted": True}
    if found is None:
        logger.info("stripe %s %s is gone at Stripe: applying %s's copy", kind, object_id, event)
        return event
    if found.get("customer") is None and obj.get("customer"):
        # Who an object belongs to never changes, but a detached payment method's current
        # state no longer says it: the event's copy does.
        found = {**found, "customer": obj["customer"]}
    return with_object(event, found, max(event.created, fetched_at))
