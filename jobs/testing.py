"""Run queued jobs inline, as a worker would, for tests and management commands.

Takes the due django-q2 deliveries (OrmQ rows whose lock has passed) in enqueue order and runs
each in this process, until none is due. What it runs is exactly what a worker runs.
"""

from __future__ import annotations

import pydoc
from datetime import datetime

from django.utils import timezone
from django_q.models import OrmQ
from django_q.signing import SignedPackage


def run_due_jobs(
    *, now: datetime | None = None, queue: str | None = None, limit: int = 10000
) -> int:
    """Run every delivery due by `now` (and those they enqueue that are due); return the count."""
    ran = 0
    while ran < limit:
        due = OrmQ.objects.filter(lock__lte=now or timezone.now()).order_by("id")
        if queue is not None:
            due = due.filter(key=queue)
        row = due.first()
        if row is None:
            return ran
        row.delete()
        task = SignedPackage.loads(row.payload)
        func = pydoc.locate(task["func"]) if isinstance(task["func"], str) else task["func"]
        func(*task["args"], **task["kwargs"])
        ran += 1
    raise RuntimeError(f"more than {limit} deliveries: a job keeps enqueueing itself?")
