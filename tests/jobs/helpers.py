"""Helpers for the jobs-layer tests: enqueue through the Tasks API and get the job row back."""

from __future__ import annotations

from datetime import datetime

from jobs.backend import JobTask
from jobs.models import Job
from jobs.testing import run_due_jobs


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


def dead_now(task: JobTask, **kwargs) -> Job:
    """Enqueue a task that dies on its first attempt, and run it: a dead letter."""
    job = enqueue(task, **kwargs)
    run_due_jobs()
    job.refresh_from_db()
    assert job.status == "dead"
    return job
