"""Periodic jobs: declared next to the job, kept as django-q2 schedules after each migrate.

The schedule only enqueues the job through the jobs layer, so a periodic run gets the same
retries, attempts log and dead letter as any other job.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone

_periodic: dict[str, int] = {}


def periodic(name: str, *, minutes: int) -> Callable[[Callable], Callable]:
    """Run job `name` every `minutes` (declare under its ``@job``)."""

    def register(func: Callable) -> Callable:
        _periodic[name] = minutes
        return func

    return register


def enqueue_periodic(name: str) -> None:
    """What the django-q2 schedule runs: one job per period, however often the schedule fires."""
    from jobs.services import enqueue

    bucket = int(timezone.now().timestamp() // (_periodic.get(name, 1) * 60))
    enqueue(name, unique_key=f"periodic:{name}:{bucket}")


def ensure_schedules(**kwargs: object) -> None:
    """Create or update the django-q2 schedule of every periodic job (post_migrate)."""
    from django_q.models import Schedule

    for name, minutes in _periodic.items():
        Schedule.objects.update_or_create(
            name=f"periodic:{name}",
            defaults={
                "func": "jobs.periodic.enqueue_periodic",
                "args": repr((name,)),
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
        )
