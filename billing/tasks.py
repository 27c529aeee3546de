"""What workers run for billing: Stripe events, emails, dunning steps, retention."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing import dunning, emails
from billing.handlers.registry import handler_for
from billing.models import StripeEvent
from billing.services import QUERIES
from jobs import job
from jobs.periodic import periodic
from jobs.services import current_job
from jobs.tasks import delete_in_batches

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

    Runs in the job's transaction: the event's new status (one statement that also reads it,
    ``start_processing``), the handler's changes and the job's outcome commit together, or a
    failure rolls them all back and the jobs layer records it (see billing.signals).
    """
    running = current_job.get()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            QUERIES["start_processing"],
            {
                "id": event_id,
                "attempts": running.attempts if running is not None else None,
                "now": timezone.now(),
            },
        )
        row = cursor.fetchone()
        if row is None:
            logger.info("stripe event #%s already settled", event_id)
            return
        event = StripeEvent(
            pk=row[0],
            stripe_id=row[1],
            type=row[2],
            api_version=row[3],
            livemode=row[4],
            created=row[5],
            payload=row[6] if isinstance(row[6], dict) else json.loads(row[6]),
            attempts=row[7],
            received_at=row[8],
            status=StripeEvent.Status.PROCESSED,
        )
        event._state.adding, event._state.db = False, connection.alias
        handler = handler_for(event.type)
        if handler is None:
            event.status = StripeEvent.Status.IGNORED
            event.save(update_fields=["status"])
        else:
            handler(event)
    logger.info("stripe event %s type=%s %s", event.stripe_id, event.type, event.status)


@job(
    "billing.send_email",
    # Most failures are a recipient not known yet (its customer.created is in flight) or a
    # brief ESP outage: retry sooner than event processing does.
    max_attempts=8,
    backoff_base=20,
    backoff_factor=3,
    backoff_cap=3600,
    timeout=30,
    queue="default",
    atomic=False,  # "sending" must commit before the ESP call: at most once
)
def send_email(email_id: int) -> None:
    """Send one queued email (billing.emails.send)."""
    emails.send(email_id)


@job(
    "billing.dunning_step",
    max_attempts=5,
    backoff_base=300,
    backoff_factor=2,
    backoff_cap=6 * 3600,
    timeout=60,
    queue="default",
)
def dunning_step(case_id: int, step: str, day: int) -> None:
    """Run one scheduled step of a dunning case (billing.dunning.run_step)."""
    dunning.run_step(case_id, step, day)


@periodic("billing.prune_events", minutes=60)
@job("billing.prune_events", max_attempts=3, timeout=600, atomic=False)
def prune_events() -> int:
    """Delete processed, resolved and ignored events past STRIPE_EVENT_RETENTION_DAYS, in batches.

    Failed and dead events stay until they are processed. A redelivery of a pruned event id is
    stored and processed again, which the handlers make harmless (Stripe stops after 3 days).
    """
    before = timezone.now() - timedelta(days=settings.STRIPE_EVENT_RETENTION_DAYS)
    return delete_in_batches(
        StripeEvent.objects.filter(
            status__in=StripeEvent.SETTLED,
            processed_at__lt=before,
        )
    )
