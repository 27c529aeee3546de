"""Applying an object's current state, fetched from the API, through the ordinary handlers.

Used where the copy in an event is not enough: the day-10 dunning step re-reads an invoice,
STRIPE_REFETCH_OBJECTS re-reads the object of every event, and thin events carry none.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import stripe
from django.conf import settings
from django.utils import timezone

from billing.handlers.payload import data_object
from billing.models import StripeEvent
from billing.stripe_api import FETCH_TIMEOUT, RETRIEVABLE, client, is_missing, retrieve

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
    """An unsaved snapshot-style copy of `event` about `obj`, with the watermark `created`."""
    data = event.payload.get("data")
    payload = {**event.payload, "data": {**(data if isinstance(data, dict) else {}), "object": obj}}
    return StripeEvent(
        pk=event.pk,
        stripe_id=event.stripe_id,
        type=event.handled_type,
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


def thin_current(event: StripeEvent) -> StripeEvent | None:
    """A thin event with its related object fetched from the API; None when there is none.

    The stripe library reads the stored notification (`parse_event_notification_without_
    verification`: the webhook verified it) and fetches the related object by its URL. A
    customer Stripe no longer has counts as deleted; any other missing object leaves nothing
    to apply.
    """
    notification = client(timeout=FETCH_TIMEOUT).parse_event_notification_without_verification(
        json.dumps(event.payload)
    )
    related = getattr(notification, "related_object", None)
    if related is None:
        return None
    fetched_at = timezone.now()
    try:
        found = notification.fetch_related_object().to_dict(for_json=True)
    except stripe.InvalidRequestError as exc:
        if not is_missing(exc):
            raise
        if related.type != "customer":
            logger.info("thin event %s: %s %s is gone at Stripe", event, related.type, related.id)
            return None
        found = {"id": related.id, "object": "customer", "deleted": True}
    return with_object(event, found, max(event.created, fetched_at))


def applied(event: StripeEvent) -> StripeEvent | None:
    """What the handler applies: the event's copy, or the object fetched now; None: nothing."""
    if event.kind == StripeEvent.Kind.THIN:
        return thin_current(event)
    return current(event) if settings.STRIPE_REFETCH_OBJECTS else event
