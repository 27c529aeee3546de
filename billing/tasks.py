"""What workers run for billing: Stripe events, dunning steps, retention."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_tasks import task

from billing import dunning
from billing.handlers import invoice, refetch
from billing.handlers.payment import top_up_failures
from billing.handlers.registry import handler_for
from billing.models import StripeEvent
from billing.services import QUERIES, record_outcome
from jobs.alerts import send_alert
from jobs.backend import Backoff
from jobs.errors import PermanentError
from jobs.models import Job
from jobs.sql import prepared_cursor
from jobs.tasks import ALERT_BACKOFF, delete_in_batches

logger = logging.getLogger(__name__)


# Rules the event's own data breaks, the same on every attempt: a CHECK (a negative amount)
# or a NOT NULL. Unique and foreign key violations can be races between events and are retried.
DATA_VIOLATIONS = (psycopg.errors.CheckViolation, psycopg.errors.NotNullViolation)


def broken_rule(error: IntegrityError) -> str | None:
    """What an event's data broke, naming the constraint; None when retrying may succeed."""
    cause = error.__cause__
    if not isinstance(cause, DATA_VIOLATIONS):
        return None
    diag = cause.diag
    name = diag.constraint_name or (f"{diag.table_name}.{diag.column_name} NOT NULL")
    return f"the event's data breaks the database constraint {name}: {diag.message_primary}"


@task(
    max_attempts=5,
    backoff=Backoff(base=60, factor=2, cap=3600),
    # Milliseconds of database work; in refetch mode, a Stripe call of at most 8 s a try.
    timeout=30,
    on_outcome=record_outcome,
)
def process_event(event_id: int) -> None:
    """Apply one stored Stripe event through its handler; an unknown type is marked ignored.

    Runs in the job's transaction: the event's outcome (one statement that also reads it,
    ``start_processing``), the handler's changes and the job's success commit together, or a
    failure rolls them all back and the jobs layer records it on the job.
    """
    # In a job this is the job's transaction already (no savepoint: a failure rolls it all
    # back anyway); called on its own, it is a transaction of its own.
    with transaction.atomic(savepoint=False), prepared_cursor() as cursor:
        cursor.execute(QUERIES["start_processing"], {"id": event_id})
        row = cursor.fetchone()
        if row is None:
            logger.info("stripe event #%s not waiting to be processed", event_id)
            return
        fields = dict(zip((column.name for column in cursor.description), row, strict=True))
        if not isinstance(fields["payload"], dict):
            fields["payload"] = json.loads(fields["payload"])
        event = StripeEvent(**fields, status=StripeEvent.Status.PROCESSED)
        event._state.adding, event._state.db = False, connection.alias
        handler = handler_for(event.handled_type)
        if handler is None:
            event.status = StripeEvent.Status.IGNORED
            event.save(update_fields=["status"])
        else:
            # A thin event's object (and with STRIPE_REFETCH_OBJECTS any event's) comes from
            # the API now; nothing to apply when Stripe no longer has it.
            state = refetch.applied(event)
            if state is not None:
                try:
                    handler(state)
                except IntegrityError as exc:
                    permanent = broken_rule(exc)
                    if permanent is None:
                        raise  # a unique or foreign key race: the next attempt sees the winner
                    raise PermanentError(permanent) from exc
    logger.info("stripe event %s type=%s %s", event.stripe_id, event.type, event.status)


@task(max_attempts=5, backoff=Backoff(base=300, factor=2, cap=6 * 3600), timeout=60)
def dunning_step(case_id: int, step: str, day: int) -> None:
    """Run one scheduled step of a dunning case (billing.dunning.run_step); the cancel step
    first asks Stripe whether the invoice was paid after all."""
    if step == "cancel" and invoice.paid_at_stripe(case_id, day):
        return
    dunning.run_step(case_id, step, day)


@task(max_attempts=5, backoff=ALERT_BACKOFF, timeout=30, atomic=False)
def alert_top_up_failed(
    payment_intent_id: str, customer_id: str, amount: str, error: str, stripe_event_id: str
) -> None:
    """A wallet top-up's payment failed: alert staff the way a dead job does (mail, Slack)."""
    send_alert(
        f"Wallet top-up payment failed: {payment_intent_id}",
        [
            f"Payment intent {payment_intent_id} of customer {customer_id or '(unknown)'} "
            f"for {amount} failed.",
            f"Stripe's reason: {error}",
            f"Event: {stripe_event_id}. The customer was not credited; Stripe's Dashboard shows "
            "the attempt.",
        ],
    )


@task(max_attempts=5, backoff=ALERT_BACKOFF, atomic=False)
def alert_top_up_failures_summary(window_start: str, seconds: int) -> None:
    """At the end of a window, one message for the top-up failures after its first alert."""
    first = Job.objects.filter(unique_key=f"top-up-failed:{window_start}").first()
    alerted = first.kwargs.get("stripe_event_id") if first else None
    failures = [
        log
        for log in top_up_failures(datetime.fromisoformat(window_start), seconds)
        if log.stripe_event_id != alerted
    ]
    if not failures:
        return
    lines = [
        f"{log.after.get('payment_intent')} of {log.customer.stripe_id if log.customer else '?'}"
        f" for {log.after.get('amount')}: {log.after.get('error')} ({log.stripe_event_id})"
        for log in failures
    ]
    send_alert(
        f"{len(failures)} more wallet top-up payments failed",
        [*lines, "None was credited; Stripe's Dashboard shows the attempts."],
    )


@task(max_attempts=3, timeout=600, atomic=False, every_minutes=60)
def prune_events() -> int:
    """Delete processed, resolved and ignored events received more than
    STRIPE_EVENT_RETENTION_DAYS ago, in batches.

    Received and dead events stay until they are settled. A redelivery of a pruned event id is
    stored and processed again, which the handlers make harmless (Stripe stops after 3 days).
    """
    before = timezone.now() - timedelta(days=settings.STRIPE_EVENT_RETENTION_DAYS)
    return delete_in_batches(
        StripeEvent.objects.filter(status__in=StripeEvent.SETTLED, received_at__lt=before)
    )
