"""Functions that change billing state: storing Stripe events and mirroring their processing."""

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

from billing.signals import PROCESS_EVENT_JOB
from jobs.models import Job
from jobs.services import ActionResult, discard, enqueue_params, replay, resolve
from jobs.sql import load

logger = logging.getLogger(__name__)


QUERIES = load(Path(__file__).with_name("sql") / "queries.sql")


def event_target(event_id: int) -> str:
    """The jobs layer's name for the StripeEvent row a job works on."""
    return f"billing.stripeevent:{event_id}"


def ingest_event(event: dict[str, Any], raw: str | None = None) -> int | None:
    """Store a verified Stripe event once and enqueue its processing, atomically.

    One statement (``ingest_event`` in billing/sql/queries.sql) inserts the event and its job
    and wakes the workers: an event is never stored without its job, and the webhook's answer
    waits for one round trip. Returns the new row's id, or None when the event id was already
    stored (a duplicate delivery: no new row, no new job). Concurrent deliveries of one id are
    settled by the unique constraint, never by a read-then-write. `raw` is the JSON text the
    event was parsed from (the webhook's verified body), stored as it is rather than encoded
    again.
    """
    params = {
        "stripe_id": event["id"],
        "type": event["type"],
        "api_version": event.get("api_version") or "",
        "livemode": bool(event.get("livemode", False)),
        "created": datetime.fromtimestamp(event["created"], tz=UTC),
        "payload": raw if raw is not None else json.dumps(event),
        "now": timezone.now(),
        **enqueue_params(PROCESS_EVENT_JOB),
    }
    # Alone, the statement is its own transaction. Inside the caller's, a savepoint keeps a
    # value PostgreSQL refuses from aborting the caller's transaction.
    savepoint = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(QUERIES["ingest_event"], params)
        row = cursor.fetchone()
    if row is None:
        logger.info("stripe event %s type=%s duplicate", event["id"], event["type"])
        return None
    logger.info("stripe event %s type=%s stored as %s", event["id"], event["type"], row[0])
    return row[0]


def event_job(event_id: int) -> Job | None:
    """The newest processing job of an event (None once retention pruned it)."""
    return Job.objects.filter(name=PROCESS_EVENT_JOB, target=event_target(event_id)).first()


def _through_job(event_id: int, act: Callable[[int], ActionResult]) -> ActionResult:
    job = event_job(event_id)
    if job is None:
        return ActionResult(False, "its job was pruned")
    return act(job.pk)


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
