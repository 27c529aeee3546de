"""What workers run for billing: processing a stored Stripe event."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from billing.handlers.registry import handler_for
from billing.models import StripeEvent
from jobs import job
from jobs.services import current_job

logger = logging.getLogger(__name__)


@job(
    "billing.process_event",
    max_attempts=5,
    backoff_base=60,
    backoff_factor=2,
    backoff_cap=3600,
    timeout=60,
    queue="default",
)
def process_event(event_id: int) -> None:
    """Apply one stored Stripe event through its handler; an unknown type is marked ignored.

    Runs in one transaction: the handler's changes and the event's new status commit together,
    or a failure rolls both back and the jobs layer records it (see billing.signals).
    """
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update().get(pk=event_id)
        if event.status in (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED):
            logger.info("stripe event %s already %s", event.stripe_id, event.status)
            return
        running = current_job.get()
        event.attempts = running.attempts if running is not None else event.attempts + 1
        handler = handler_for(event.type)
        if handler is None:
            event.status = StripeEvent.Status.IGNORED
        else:
            event.status = StripeEvent.Status.PROCESSING
            event.save(update_fields=["status", "attempts"])
            handler(event)
            event.status = StripeEvent.Status.PROCESSED
        event.processed_at = timezone.now()
        event.next_attempt_at = None
        event.last_error = ""
        event.save(
            update_fields=["status", "attempts", "processed_at", "next_attempt_at", "last_error"]
        )
    logger.info("stripe event %s type=%s %s", event.stripe_id, event.type, event.status)
