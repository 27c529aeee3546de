"""Functions that change billing state: storing Stripe events and mirroring their processing."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from billing.models import StripeEvent
from billing.signals import PROCESS_EVENT_JOB
from jobs.models import Job
from jobs.services import ActionResult, discard, enqueue_on_insert, replay, resolve

logger = logging.getLogger(__name__)


_INSERT_EVENT = f"""
    INSERT INTO {StripeEvent._meta.db_table}
        (stripe_id, type, api_version, livemode, created, payload, status, attempts,
         last_error, received_at)
    VALUES (%(source_0)s, %(source_1)s, %(source_2)s, %(source_3)s, %(source_4)s,
            %(source_5)s::jsonb, %(source_6)s, 0, '', now())
    ON CONFLICT (stripe_id) DO NOTHING
    RETURNING id
"""  # noqa: S608 (the table name is ours, every value is a parameter)


def event_target(event_id: int) -> str:
    """The jobs layer's name for the StripeEvent row a job works on."""
    return f"billing.stripeevent:{event_id}"


def event_params(event: dict[str, Any]) -> list:
    """The values of `_INSERT_EVENT` for a verified event."""
    return [
        event["id"],
        event["type"],
        event.get("api_version") or "",
        bool(event.get("livemode", False)),
        datetime.fromtimestamp(event["created"], tz=UTC),
        json.dumps(event),
        StripeEvent.Status.RECEIVED,
    ]


def ingest_event(event: dict[str, Any]) -> int | None:
    """Store a verified Stripe event once and enqueue its processing, atomically.

    One SQL statement inserts the event, its job and the job's delivery (the jobs layer's
    enqueue_on_insert): an event is never stored without its job, and the webhook's answer
    waits for one round trip instead of five. Returns the new row's id, or None when the event
    id was already stored (a duplicate delivery: no new row, no new job). Concurrent
    deliveries of one id are settled by the unique constraint, never by a read-then-write.
    """
    event_id = enqueue_on_insert(
        _INSERT_EVENT,
        event_params(event),
        name=PROCESS_EVENT_JOB,
        id_kwarg="event_id",
        target_prefix=event_target(""),
    )
    if event_id is None:
        logger.info("stripe event %s type=%s duplicate", event["id"], event["type"])
        return None
    logger.info("stripe event %s type=%s stored as %s", event["id"], event["type"], event_id)
    return event_id


def event_job(event_id: int) -> Job | None:
    """The newest processing job of an event (None once retention pruned it)."""
    return Job.objects.filter(name=PROCESS_EVENT_JOB, target=event_target(event_id)).first()


def _through_job(event_id: int, act: Callable[[int], ActionResult]) -> ActionResult:
    job = event_job(event_id)
    if job is None:
        return ActionResult(False, "its job was pruned")
    return act(job.pk)


def replay_event(event_id: int, *, actor: object, force: bool = False) -> ActionResult:
    """Process an event again through its job (audited by the jobs layer).

    A processed or ignored event only when forced; handlers are idempotent, so that is safe.
    """
    return _through_job(event_id, lambda job_id: replay(job_id, actor=actor, force=force))


def resolve_event(event_id: int, *, actor: object) -> ActionResult:
    """Stop retrying a failed or dead event without running it: staff fixed it another way."""
    return _through_job(event_id, lambda job_id: resolve(job_id, actor=actor))


def ignore_event(event_id: int, *, actor: object) -> ActionResult:
    """Stop retrying a failed or dead event without running it: it should have no effect."""
    return _through_job(event_id, lambda job_id: discard(job_id, actor=actor))
