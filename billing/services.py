"""Functions that change billing state: storing Stripe events and settling their processing."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from billing.models import StripeEvent
from jobs.backend import JobTask, task_named
from jobs.models import Job, JobAction
from jobs.services import ActionResult, discard, enqueue_params, replay, resolve
from jobs.sql import load, prepared_cursor

logger = logging.getLogger(__name__)

PROCESS_EVENT_JOB = "billing.tasks.process_event"
QUERIES = load(Path(__file__).with_name("sql") / "queries.sql")


def process_event_task() -> JobTask:
    """billing.tasks.process_event, by name: billing.tasks imports this module."""
    return task_named(PROCESS_EVENT_JOB)


def ingest_event(event: dict[str, Any], raw: str | None = None) -> int | None:
    """Store a verified v1 event (webhook, backfill) once with its processing job.

    `raw` is the JSON text the event was parsed from (the webhook's verified body), stored as
    it is rather than encoded again. See :func:`store_event`.
    """
    return store_event(
        stripe_id=event["id"],
        event_type=event["type"],
        created=datetime.fromtimestamp(event["created"], tz=UTC),
        payload=raw if raw is not None else json.dumps(event),
        api_version=event.get("api_version") or "",
        livemode=bool(event.get("livemode", False)),
    )


def store_event(
    *,
    stripe_id: str,
    event_type: str,
    created: datetime,
    payload: str,
    kind: str = StripeEvent.Kind.SNAPSHOT,
    api_version: str = "",
    livemode: bool = False,
) -> int | None:
    """Store a verified Stripe event once and enqueue its processing, atomically.

    One statement (``ingest_event`` in billing/sql/queries.sql) inserts the event and its job
    and wakes the workers: an event is never stored without its job, and the webhook's answer
    waits for one round trip. Returns the new row's id, or None when the event id was already
    stored (a duplicate delivery: no new row, no new job). Concurrent deliveries of one id are
    settled by the unique constraint, never by a read-then-write. `payload` is JSON text.
    """
    params = {
        "stripe_id": stripe_id,
        "type": event_type,
        "kind": kind,
        "api_version": api_version,
        "livemode": livemode,
        "created": created,
        "payload": payload,
        "now": timezone.now(),
        **enqueue_params(process_event_task()),
    }
    # Alone, the statement is its own transaction. Inside the caller's, a savepoint keeps a
    # value PostgreSQL refuses from aborting the caller's transaction.
    savepoint = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    with savepoint, prepared_cursor() as cursor:
        cursor.execute(QUERIES["ingest_event"], params)
        row = cursor.fetchone()
    if row is None:
        logger.info("stripe event %s type=%s duplicate", stripe_id, event_type)
        return None
    logger.info("stripe event %s type=%s stored as %s", stripe_id, event_type, row[0])
    return row[0]


# What an outcome of the processing job that the job itself cannot write makes of its event.
OUTCOME_STATUS = {
    Job.Status.DEAD: StripeEvent.Status.DEAD,
    # Replayed: waiting for its job again; the job marks it processed (or ignored) when it runs.
    JobAction.Kind.REPLAY: StripeEvent.Status.RECEIVED,
    JobAction.Kind.RESOLVE: StripeEvent.Status.RESOLVED,
    JobAction.Kind.DISCARD: StripeEvent.Status.IGNORED,
}


def record_outcome(job: Job, outcome: str) -> None:
    """The processing job went dead or staff acted on it: the event's status says so.

    Called by the jobs layer in the transaction that changes the job (JobType.on_outcome),
    so the event and its job never disagree.
    """
    StripeEvent.objects.filter(pk=job.kwargs["event_id"]).update(status=OUTCOME_STATUS[outcome])


def _through_job(event_id: int, act: Callable[[int], ActionResult]) -> ActionResult:
    job_id = StripeEvent.objects.filter(pk=event_id).values_list("job_id", flat=True).first()
    if job_id is None:
        return ActionResult(False, "its job was pruned")
    return act(job_id)


def replay_event(
    event_id: int, *, actor: object, force: bool = False, note: str = ""
) -> ActionResult:
    """Process an event again through its job (audited by the jobs layer).

    A processed or ignored event only when forced; handlers are idempotent, so that is safe.
    """
    return _through_job(
        event_id, lambda job_id: replay(job_id, actor=actor, force=force, note=note)
    )


def resolve_event(event_id: int, *, actor: object, note: str = "") -> ActionResult:
    """Stop retrying a failed or dead event without running it: staff fixed it another way."""
    return _through_job(event_id, lambda job_id: resolve(job_id, actor=actor, note=note))


def ignore_event(event_id: int, *, actor: object, note: str = "") -> ActionResult:
    """Stop retrying a failed or dead event without running it: it should have no effect."""
    return _through_job(event_id, lambda job_id: discard(job_id, actor=actor, note=note))
