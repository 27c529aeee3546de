"""Jobs of the jobs layer itself: alerts and retention."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import task

from jobs.alerts import dead_job_lines, send_alert, summary_lines
from jobs.backend import Backoff
from jobs.models import Job, WorkerCluster

BATCH = 1000


ALERT_BACKOFF = Backoff(base=30)


@task(max_attempts=5, backoff=ALERT_BACKOFF)
def alert_dead_job(job_id: int) -> None:
    """Tell the admins that a job went dead."""
    dead = Job.objects.get(pk=job_id)
    send_alert(f"Dead job: {dead.name} #{dead.pk}", dead_job_lines(dead))


@task(max_attempts=5, backoff=ALERT_BACKOFF)
def alert_summary(started_at: str, first_job_id: int) -> None:
    """At the end of an alert window, one message for every other death in it."""
    lines = summary_lines(started_at, first_job_id)
    if lines:
        total = sum(int(line.split(" ")[0]) for line in lines)
        send_alert(f"{total} more jobs went dead", [*lines, "See the admin: Dead letters."])


def delete_in_batches(queryset) -> int:
    """Delete matching rows a batch at a time: short transactions, short locks."""
    deleted = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:BATCH])
        if not ids:
            return deleted
        _, per_model = queryset.model.objects.filter(pk__in=ids).delete()
        deleted += per_model.get(queryset.model._meta.label, 0)


@task(max_attempts=3, timeout=600, atomic=False, every_minutes=60)
def prune() -> dict[str, int]:
    """Delete finished job records past retention. Dead jobs stay until staff settle them."""
    now = timezone.now()
    succeeded_before = now - timedelta(hours=settings.JOBS_RETENTION_SUCCEEDED_HOURS)
    settled_before = now - timedelta(days=settings.JOBS_RETENTION_FAILED_DAYS)
    return {
        "succeeded": delete_in_batches(
            Job.objects.filter(status="succeeded", finished_at__lt=succeeded_before)
        ),
        "settled": delete_in_batches(
            Job.objects.filter(status__in=["resolved", "discarded"], finished_at__lt=settled_before)
        ),
        "clusters": WorkerCluster.objects.filter(seen_at__lt=now - timedelta(days=1)).delete()[0],
    }
