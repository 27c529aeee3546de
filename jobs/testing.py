"""Run due jobs inline, as a worker would, for tests and management commands.

Claims the due jobs one at a time with the workers' own claim statement, oldest run_at first
across queues, and runs each with the workers' own :func:`jobs.services.execute`, until none
is due. What it runs is exactly what a worker runs.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.utils import timezone

from jobs import services
from jobs.models import Job


def run_due_jobs(
    *, now: datetime | None = None, queue: str | None = None, limit: int = 10000
) -> int:
    """Run every job due by `now` (and those they enqueue that are due); return the count."""
    ran = 0
    while ran < limit:
        at = now or timezone.now()
        due = Job.objects.filter(
            status__in=[*Job.WAITING, Job.Status.RUNNING], run_at__lte=at
        ).order_by("run_at", "id")
        if queue is not None:
            due = due.filter(queue=queue)
        first = due.values_list("queue", flat=True).first()
        if first is None:
            return ran
        with connection.cursor() as cursor:
            claims, _ = services.claim(cursor, first, limit=1, worker="inline", now=at)
        if not claims:
            return ran
        for claimed in claims:
            services.execute(claimed)
            ran += 1
    raise RuntimeError(f"more than {limit} jobs: a job keeps enqueueing itself?")
