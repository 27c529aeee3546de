"""Mirror the jobs layer's view of an event's processing onto the StripeEvent row."""

from __future__ import annotations

from typing import Any

from billing.models import StripeEvent
from jobs.models import Job, JobAction

PROCESS_EVENT_JOB = "billing.tasks.process_event"


def mirror_failure(sender: str, job: Job, error: str, dead: bool, **_: Any) -> None:
    """A processing attempt failed: failed with the next attempt's time, or dead."""
    if sender != PROCESS_EVENT_JOB:
        return
    StripeEvent.objects.filter(pk=job.kwargs["event_id"]).update(
        status=StripeEvent.Status.DEAD if dead else StripeEvent.Status.FAILED,
        attempts=job.attempts,
        next_attempt_at=None if dead else job.run_at,
        last_error=error,
    )


def mirror_action(sender: str, job: Job, action: str, **_: Any) -> None:
    """Staff acted on the processing job: replayed (processed again; handlers are idempotent),
    resolved (settled without running) or discarded (the event is ignored)."""
    if sender != PROCESS_EVENT_JOB:
        return
    event = StripeEvent.objects.filter(pk=job.kwargs["event_id"])
    if action == JobAction.Kind.REPLAY:
        event.update(
            status=StripeEvent.Status.RECEIVED, next_attempt_at=job.run_at, processed_at=None
        )
        return
    settled = {
        JobAction.Kind.RESOLVE: StripeEvent.Status.RESOLVED,
        JobAction.Kind.DISCARD: StripeEvent.Status.IGNORED,
    }
    if action in settled:
        # processed_at stamps when it was settled, so retention prunes it like a processed one.
        event.update(status=settled[action], next_attempt_at=None, processed_at=job.finished_at)
