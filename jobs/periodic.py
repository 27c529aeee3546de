"""Periodic jobs: declared next to the job, kept as django-q2 schedules after each migrate.

django-q2's Schedule model stays the way periodic work is declared (read-only in the admin):
each schedule names a job type, and when it is due the cluster's scheduler hands it to our
broker, which enqueues that job through the jobs layer (jobs.broker.JobsBroker.enqueue). A
periodic run therefore gets the same retries, attempts log and dead letter as any other job,
and one run is one job however many clusters' schedulers see it (the scheduled instant is part
of the job's unique key).
"""

from __future__ import annotations

from collections.abc import Callable

_periodic: dict[str, int] = {}


def periodic(name: str, *, minutes: int) -> Callable[[Callable], Callable]:
    """Run job `name` every `minutes` (declare under its ``@job``)."""

    def register(func: Callable) -> Callable:
        _periodic[name] = minutes
        return func

    return register


def ensure_schedules(**kwargs: object) -> None:
    """Create or update the django-q2 schedule of every periodic job (post_migrate)."""
    from django_q.models import Schedule

    from jobs.registry import get_job_type

    # A periodic job removed from the code takes its schedule with it.
    Schedule.objects.filter(name__startswith="periodic:").exclude(
        name__in=[f"periodic:{name}" for name in _periodic]
    ).delete()
    for name, minutes in _periodic.items():
        Schedule.objects.update_or_create(
            name=f"periodic:{name}",
            defaults={
                "func": name,
                "args": None,
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
                "intended_date_kwarg": "scheduled_for",
                # The clusters of the job's queue run its schedule.
                "cluster": get_job_type(name).queue,
            },
        )
