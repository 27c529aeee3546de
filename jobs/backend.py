"""Django's Tasks API (django-tasks, ``django.tasks`` from Django 6.0) on the jobs layer's queue.

``TASKS = {"default": {"BACKEND": "jobs.backend.JobsBackend", "QUEUES": [...]}}``. Every job of
the project is a ``@task``; the backend's ``task_class`` (:class:`JobTask`) carries the retry
policy (``max_attempts``, ``backoff``, ``timeout``, ``atomic``, ``heartbeat``, ``every_minutes``)
and, through ``using()``, what our enqueue has beyond the standard (``unique_key``,
``target``). A task's result is read from its ``jobs.Job`` row and that row's attempts.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import checks
from django.db import connection, connections
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.version import PY311
from django_tasks import TaskResult, TaskResultStatus
from django_tasks.backends.base import BaseTaskBackend
from django_tasks.base import Task, TaskError
from django_tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist
from django_tasks.signals import task_enqueued
from django_tasks.utils import normalize_json

from jobs.sql import QUERIES

QUEUE_NAME = re.compile(r"^[a-z0-9_-]{1,50}$")


@dataclass(frozen=True)
class Backoff:
    """Delay before attempt n+1: ``min(cap, base * factor ** (n - 1))`` seconds, spread by
    +/- ``jitter`` (a fraction) so that jobs that failed together do not retry together."""

    base: float = 60.0
    factor: float = 2.0
    cap: float = 6 * 3600.0
    jitter: float = 0.1

    def delay(self, attempt: int) -> timedelta:
        """Delay after failed attempt number ``attempt`` (1-based)."""
        seconds = min(self.cap, self.base * self.factor ** (attempt - 1))
        if self.jitter:
            seconds *= 1 + random.uniform(-self.jitter, self.jitter)
        return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=PY311, kw_only=True)  # type: ignore[literal-required]
class JobTask(Task):
    """A Task with the jobs layer's policy; ``@task(max_attempts=5, backoff=Backoff(...))``.

    - ``timeout``: seconds an attempt may run (SIGALRM, then django-q2 kills the worker).
    - ``atomic``: the function and the attempt's success commit in one transaction.
    - ``heartbeat``: seconds of lease a running attempt holds, renewed while it runs (default
      ``JOBS_LEASE_SECONDS``): how soon a killed worker's job is claimed again.
    - ``every_minutes``: a periodic task (a django-q2 Schedule, kept after each migrate).
    - ``on_outcome(job, outcome)``: for a task whose app records the outcome of its work on a
      row of its own (a Stripe event's status): the function writes success itself, in its
      own transaction; this is called, in the jobs layer's transaction, for the outcomes the
      function cannot write: ``dead``, and staff's ``replay``, ``resolve`` and ``discard``.
    - ``unique_key`` / ``target`` (set with ``using()``): a second enqueue of a key returns the
      existing job; the target names what the job is about, for the console.
    """

    max_attempts: int = 5
    backoff: Backoff = Backoff()
    timeout: int = 60
    atomic: bool = True
    heartbeat: float | None = None
    every_minutes: int | None = None
    on_outcome: Callable[[Any, str], None] | None = None
    unique_key: str | None = None
    target: str = ""

    def using(  # type: ignore[override]
        self,
        *,
        unique_key: str | None = None,
        target: str | None = None,
        **standard: Any,
    ) -> JobTask:
        """``Task.using()`` plus this enqueue's ``unique_key`` and ``target``."""
        # No zero-argument super(): the dataclass decorator rebuilds a slotted class.
        task = Task.using(self, **standard)
        changes: dict[str, Any] = {}
        if unique_key is not None:
            changes["unique_key"] = unique_key[:200]
        if target is not None:
            changes["target"] = target[:200]
        return replace(task, **changes) if changes else task

    def backoff_delay(self, attempt: int) -> timedelta:
        return self.backoff.delay(attempt)

    @property
    def lease_seconds(self) -> float:
        return self.heartbeat or settings.JOBS_LEASE_SECONDS


def task_named(name: str) -> JobTask:
    """The task a job row names (its module path); LookupError when there is none."""
    from jobs.errors import JobNotRegistered

    try:
        task = import_string(name)
    except ImportError:
        raise JobNotRegistered(f"no task named {name!r}") from None
    if not isinstance(task, JobTask):
        raise JobNotRegistered(f"{name!r} is not a @task of the jobs backend")
    return task


STATUS = {
    "queued": TaskResultStatus.READY,
    "retrying": TaskResultStatus.READY,
    "running": TaskResultStatus.RUNNING,
    "succeeded": TaskResultStatus.SUCCESSFUL,
    "dead": TaskResultStatus.FAILED,
    # Settled by staff without running: the task did not succeed.
    "resolved": TaskResultStatus.FAILED,
    "discarded": TaskResultStatus.FAILED,
}


def result_of(job: Any, task: JobTask | None = None, attempts: Iterable[Any] | None = None):
    """The TaskResult of a Job row: its status, timestamps, and errors and workers from its
    attempts (``attempts``: its JobAttempt rows, read when not given)."""
    task = task or task_named(job.name)
    if attempts is None:
        attempts = job.attempt_log.order_by("number", "id") if job.pk else []
    log = sorted(attempts, key=lambda attempt: (attempt.number, attempt.started_at))
    errors = [
        TaskError(
            exception_class_path=attempt.error_class or "jobs.errors.WorkerDied",
            traceback=attempt.traceback or attempt.error,
        )
        for attempt in log
        if attempt.outcome in ("failed", "crashed")
    ]
    worker_ids = [attempt.worker for attempt in log]
    if job.status == "running" and len(worker_ids) < job.attempts:
        worker_ids.append(job.worker)
    result = TaskResult(
        task=task,
        id=str(job.pk),
        status=STATUS[job.status],
        enqueued_at=job.created_at,
        started_at=log[0].started_at if log else job.started_at,
        last_attempted_at=job.started_at,
        finished_at=job.finished_at if job.status in ("succeeded", *FAILED) else None,
        args=job.args,
        kwargs=job.kwargs,
        backend=task.backend,
        errors=errors,
        worker_ids=worker_ids,
    )
    object.__setattr__(result, "_return_value", job.return_value)
    return result


FAILED = ("dead", "resolved", "discarded")


def insert_job(task: JobTask, *, args: list, kwargs: dict) -> Any:
    """Create the job of ``task.enqueue(*args, **kwargs)`` in the caller's transaction, due at
    the task's ``run_after`` (now by default); what :class:`jobs.backend.JobsBackend` calls.

    One statement: the row, and a NOTIFY that wakes the queue's workers when the transaction
    commits (a rolled-back enqueue neither runs nor wakes anyone). With the task's
    ``unique_key``, a second enqueue of the same key returns the existing job instead of
    creating another: the guard for side effects that must happen once.
    """
    now = timezone.now()
    from jobs.models import Job

    run_at = task.run_after or now
    name = task.module_path
    with connection.cursor() as cursor:
        cursor.execute(
            QUERIES["enqueue"],
            {
                "name": name,
                "queue": task.queue_name,
                "args": json.dumps(args),
                "kwargs": json.dumps(kwargs),
                "target": task.target,
                "unique_key": task.unique_key,
                "max_attempts": task.max_attempts,
                "timeout": task.timeout,
                "run_at": run_at,
                "now": now,
            },
        )
        job_id = cursor.fetchone()[0]
    if job_id is None:
        return Job.objects.get(unique_key=task.unique_key)
    job = Job(
        pk=job_id,
        name=name,
        args=args,
        kwargs=kwargs,
        target=task.target,
        queue=task.queue_name,
        unique_key=task.unique_key,
        max_attempts=task.max_attempts,
        timeout=task.timeout,
        run_at=run_at,
        created_at=now,
    )
    job._state.adding, job._state.db = False, connection.alias
    return job


class JobsBackend(BaseTaskBackend):
    """The jobs layer as a Tasks backend: enqueue writes a ``jobs.Job`` row in the caller's
    transaction; our workers (``manage.py jobs_worker``) run it with retries and dead letters.

    Priority is not supported: the claim reads one partial index in (run_at, id) order, which
    is what makes it FIFO, finds the earliest run_at ahead and serves readiness; ordering by
    priority first would need a second index or a sort of every due row (docs/queue.md).
    """

    task_class = JobTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = False

    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        if not isinstance(task, JobTask):
            raise InvalidTaskError("Tasks of the jobs backend are declared with its @task.")
        if task.max_attempts < 1:
            raise InvalidTaskError("max_attempts must be at least 1.")
        if task.timeout < 1:
            raise InvalidTaskError("timeout must be at least 1 second.")
        if task.heartbeat is not None and task.heartbeat <= 0:
            raise InvalidTaskError("heartbeat must be a positive number of seconds.")

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        self.validate_task(task)
        args, kwargs = normalize_json(list(args)), normalize_json(dict(kwargs))
        job = insert_job(task, args=args, kwargs=kwargs)
        result = result_of(job, task, attempts=[])
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        from jobs.errors import JobNotRegistered
        from jobs.models import Job

        try:
            job = Job.objects.get(pk=int(result_id))
            return result_of(job)
        except (ValueError, Job.DoesNotExist, JobNotRegistered):
            raise TaskResultDoesNotExist(result_id) from None

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        messages = []
        if not self.queues:
            messages.append(
                checks.Error("QUEUES must name the queues workers serve.", id="jobs.E001")
            )
        for queue in sorted(self.queues):
            if not QUEUE_NAME.match(queue):
                messages.append(
                    checks.Error(
                        f"Queue {queue!r}: 1-50 characters of a-z, 0-9, '_' and '-' "
                        "(it names a LISTEN channel and fits jobs_job.queue).",
                        id="jobs.E002",
                    )
                )
        if self.options:
            messages.append(
                checks.Error(
                    f"The jobs backend takes no OPTIONS (got {sorted(self.options)}); "
                    "its settings are JOBS_* (docs/queue.md).",
                    id="jobs.E003",
                )
            )
        if connections["default"].vendor != "postgresql":
            messages.append(checks.Error("The jobs backend needs PostgreSQL.", id="jobs.E004"))
        return messages
