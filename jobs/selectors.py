"""Read-only queries about the queue, for the dashboard, /readyz and /metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from jobs.models import Job, JobAttempt, WorkerCluster
from jobs.sql import QUERIES

STATES = ("waiting", "active", "delayed", "completed", "failed", "dead")


def queue_counts(now: datetime | None = None) -> dict[str, dict[str, int]]:
    """Per queue: waiting, active, delayed (due later), completed, failed (retrying), dead.

    A job waiting for its next attempt after a failure counts as failed, whenever that attempt
    is due: staff look for failures there, not among jobs merely scheduled for later.
    """
    now = now or timezone.now()
    rows = Job.objects.values("queue").annotate(
        waiting=Count("pk", filter=Q(status="queued", run_at__lte=now)),
        delayed=Count("pk", filter=Q(status="queued", run_at__gt=now)),
        active=Count("pk", filter=Q(status="running")),
        completed=Count("pk", filter=Q(status="succeeded")),
        failed=Count("pk", filter=Q(status="retrying")),
        dead=Count("pk", filter=Q(status="dead")),
    )
    return {row.pop("queue"): row for row in rows}


def backlog(now: datetime | None = None) -> int:
    """Jobs that are due and not started: what the workers are behind by."""
    now = now or timezone.now()
    return Job.objects.filter(status__in=Job.WAITING, run_at__lte=now).count()


def oldest_due_age(now: datetime | None = None) -> timedelta | None:
    """How long the oldest due, unstarted job has waited."""
    now = now or timezone.now()
    oldest = Job.objects.filter(status__in=Job.WAITING, run_at__lte=now).aggregate(Min("run_at"))
    return now - oldest["run_at__min"] if oldest["run_at__min"] else None


def first_hour(hours: int, now: datetime) -> datetime:
    """The start of the oldest hour slot of a `hours`-long per-hour series ending at `now`."""
    return (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)


def fill_hours(start: datetime, hours: int, **counts: dict[datetime, int]) -> list[dict]:
    """One row per hour from `start`, oldest first: {"hour", <name>: count, ...}, gaps as 0."""
    series = []
    for index in range(hours):
        hour = start + timedelta(hours=index)
        series.append(
            {"hour": hour, **{name: by_hour.get(hour, 0) for name, by_hour in counts.items()}}
        )
    return series


def attempts_per_hour(hours: int = 24, now: datetime | None = None) -> list[dict]:
    """Attempts and failed attempts per hour over the last `hours`, oldest first, gaps filled."""
    now = now or timezone.now()
    start = first_hour(hours, now)
    rows = (
        JobAttempt.objects.filter(started_at__gte=start)
        .annotate(hour=TruncHour("started_at"))
        .values("hour")
        .annotate(total=Count("pk"), failures=Count("pk", filter=~Q(outcome="succeeded")))
    )
    return fill_hours(
        start,
        hours,
        total={row["hour"]: row["total"] for row in rows},
        failures={row["hour"]: row["failures"] for row in rows},
    )


def queues() -> list[str]:
    """Every queue of the Tasks backend, and any a cluster serves."""
    from django_tasks import default_task_backend

    names = set(default_task_backend.queues)
    names |= set(WorkerCluster.objects.values_list("queue", flat=True).distinct())
    return sorted(names)


def worker_clusters(now: datetime | None = None) -> list[dict]:
    """Every worker cluster seen in the last day, by queue; one whose heartbeat is older than
    READY_WORKER_STALE_SECONDS is kept and marked stale, so staff see it stopped."""
    now = now or timezone.now()
    stale_after = settings.READY_WORKER_STALE_SECONDS
    clusters = []
    for cluster in WorkerCluster.objects.order_by("queue", "name", "host", "pid"):
        seen_s = (now - cluster.seen_at).total_seconds()
        clusters.append(
            {
                "cluster": cluster.name,
                "queue": cluster.queue,
                "host": cluster.host,
                "pid": cluster.pid,
                "workers": cluster.workers,
                "uptime_s": int((now - cluster.started_at).total_seconds()),
                "seen_s": round(seen_s, 1),
                "stale": seen_s > stale_after,
            }
        )
    return clusters


def clusters_alive(now: datetime | None = None) -> list[dict]:
    """Worker clusters whose heartbeat is recent (READY_WORKER_STALE_SECONDS)."""
    return [cluster for cluster in worker_clusters(now) if not cluster["stale"]]


@dataclass(frozen=True)
class Unattended:
    """A queue with due work and no live worker: since when, and its last worker's heartbeat."""

    queue: str
    seconds: int  # how long nobody has attended it
    last_seen_s: int | None  # None: no cluster of this queue seen in the last day


def queues_without_workers(now: datetime | None = None) -> list[Unattended]:
    """Queues with work due for over READY_WORKER_STALE_SECONDS and no live cluster."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            QUERIES["queues_without_workers"],
            {
                "queues": queues(),
                "now": now,
                "stale_seconds": settings.READY_WORKER_STALE_SECONDS,
            },
        )
        rows = cursor.fetchall()
    found = []
    for name, oldest_due, last_seen in rows:
        since = max(oldest_due, last_seen) if last_seen else oldest_due
        found.append(
            Unattended(
                queue=name,
                seconds=int((now - since).total_seconds()),
                last_seen_s=int((now - last_seen).total_seconds()) if last_seen else None,
            )
        )
    return found
