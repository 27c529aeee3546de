"""Enqueue through the Tasks API and get the job row back, for tests that read the row."""

from __future__ import annotations

from datetime import datetime

from jobs.backend import JobTask
from jobs.models import Job


def enqueue(
    task: JobTask,
    *,
    target: str | None = None,
    unique_key: str | None = None,
    run_at: datetime | None = None,
    **kwargs: object,
) -> Job:
    """``task.using(...).enqueue(**kwargs)``, and the Job row it wrote."""
    result = task.using(target=target, unique_key=unique_key, run_after=run_at).enqueue(**kwargs)
    return Job.objects.get(pk=result.id)
