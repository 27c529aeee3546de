"""Helpers for the jobs-layer tests."""

from __future__ import annotations

from jobs import enqueue
from jobs.models import Job
from jobs.testing import run_due_jobs


def dead_now(name: str, **kwargs) -> Job:
    """Enqueue a job of a type that dies on its first attempt, and run it: a dead letter."""
    job = enqueue(name, **kwargs)
    run_due_jobs()
    job.refresh_from_db()
    assert job.status == "dead"
    return job
