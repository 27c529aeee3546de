"""Mirror the jobs layer's view of an event's processing onto the StripeEvent row."""

from __future__ import annotations

from typing import Any

from billing.models import StripeEvent
from jobs.models import Job, JobAction

PROCESS_EVENT_JOB = "billing.process_event"


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
    """Staff replayed the processing job: the event is processed again (handlers are idempotent)."""
    if sender != PROCESS_EVENT_JOB or action != JobAction.Kind.REPLAY:
        return
    StripeEvent.objects.filter(pk=job.kwargs["event_id"]).update(
        status=StripeEvent.Status.RECEIVED, next_attempt_at=job.run_at, processed_at=None
    )
