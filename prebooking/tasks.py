"""What workers run for prebookings, all jobs of the jobs layer: the armers of each instant,
re-sending and the sweep on the timing queue (the failure e-mail is the mail app's job)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django_tasks import task

from jobs.backend import Backoff
from prebooking import firing, services


@task(max_attempts=5, backoff=Backoff(base=60))
def notify_failure(prebooking_id: int) -> None:
    """Queue the failure e-mail of a prebooking: jobs queued before the mail app owned that
    e-mail carry this name, and an accepted job is never dropped. New code calls
    services.queue_failure_email inside the failure's own transaction instead."""
    with transaction.atomic():
        services.queue_failure_email(prebooking_id)


@task(
    queue_name=settings.PREBOOKING_QUEUE,
    max_attempts=3,
    backoff=Backoff(base=0.5, jitter=0),
    timeout=settings.PREBOOKING_ARM_SECONDS,
    atomic=False,  # it commits as it goes: armed, firing, each outcome
    heartbeat=1.0,  # a dead armer's job is claimed again within a second
)
def arm(instant: str) -> int:
    """Fire the prebookings opening at `instant` (ISO 8601), as its primary or its standby."""
    return firing.arm_instant(datetime.fromisoformat(instant))


@task(
    queue_name=settings.PREBOOKING_QUEUE,
    max_attempts=1,  # the sweep decides again; a second send is never automatic
    timeout=settings.PREBOOKING_RETRY_WINDOW + 30,
    atomic=False,
)
def refire(prebooking_id: int) -> bool:
    """Send again a prebooking that the sweep found firing with a dead worker."""
    return firing.fire_now(prebooking_id, claim=False)


@task(queue_name=settings.PREBOOKING_QUEUE, max_attempts=3, timeout=120, every_minutes=1)
def sweep() -> dict[str, int]:
    """Recovery backstop (services.sweep), every minute on the timing queue."""
    return services.sweep()
