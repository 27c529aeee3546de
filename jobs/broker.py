"""The django-q2 broker of the jobs layer: clusters claim ``jobs.Job`` rows directly.

``Q_CLUSTER["broker_class"] = "jobs.broker.JobsBroker"``. django-q2 stays the runtime (the
cluster, its worker processes, timeouts, recycling, and its Schedule model for periodic work);
the queue is the Job table itself, so there is no second record of a job to keep in step:

- ``dequeue`` runs the one-statement claim of jobs/sql/queries.sql on its own autocommit
  connection and hands what it claimed to django-q2 as one task that runs
  ``jobs.services.execute_batch`` (in claim order). Until a worker process takes the batch
  over, the pusher's lease keeper renews the batch's short leases: a killed cluster's jobs
  are claimed again within a lease (``JOBS_LEASE_SECONDS``). When nothing
  is due it sleeps on LISTEN until a hint arrives, the earliest run_at ahead (a delayed job, a
  retry, a lease) falls due, or ``poll`` seconds pass: a retry starts at its instant, not at
  the next poll.
- ``acknowledge`` does nothing: an attempt's outcome is written by its own finish statement,
  in the job's transaction. A worker that dies leaves the job running with a lease that the
  next claim sees expire.
- ``enqueue`` is what django-q2's scheduler (and ``async_task``) call: the function named must
  be a ``@task`` of the jobs backend, and it becomes a Job row like any other.
- Each cluster writes a heartbeat row (``jobs.WorkerCluster``) about once a second while it
  claims: /readyz and the dashboard read it per queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from django import db
from django.db import DatabaseError, connections
from django.utils import timezone
from django_q.brokers import Broker
from django_q.conf import Conf
from django_q.signing import SignedPackage
from psycopg import sql

from jobs import services
from jobs.backend import task_named
from jobs.errors import JobNotRegistered
from jobs.sql import QUERIES

logger = logging.getLogger(__name__)

MAX_RECONNECT_DELAY = 5.0
HEARTBEAT_SECONDS = 1.0
# Django-only keys of DATABASES[...]["OPTIONS"] that psycopg.connect() does not accept.
DJANGO_ONLY_OPTIONS = {"isolation_level", "server_side_binding", "assume_role", "pool"}
EXECUTE_BATCH = "jobs.services.execute_batch"


def channel_for(queue: str) -> str:
    """The NOTIFY channel of a queue (the SQL function jobs_notify, migration jobs.0007)."""
    return f"jobs:{queue}"


def listen_connection_params(alias: str) -> dict[str, Any]:
    """psycopg.connect() arguments for the database Django calls `alias` (test database too)."""
    settings_dict = connections[alias].settings_dict
    params: dict[str, Any] = {
        "dbname": settings_dict.get("NAME"),
        "user": settings_dict.get("USER"),
        "password": settings_dict.get("PASSWORD"),
        "host": settings_dict.get("HOST"),
        "port": settings_dict.get("PORT"),
    }
    params = {key: value for key, value in params.items() if value}
    options = settings_dict.get("OPTIONS") or {}
    params.update({k: v for k, v in options.items() if k not in DJANGO_ONLY_OPTIONS})
    params["autocommit"] = True
    params.setdefault("application_name", "jobs claimer")
    return params


class JobsBroker(Broker):
    """Claims due Job rows of one queue for a django-q2 cluster (see the module docstring)."""

    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key=list_key)
        self._reset()

    def _reset(self) -> None:
        self.bulk = max(1, int(Conf.BULK))
        # The longest a claimer sleeps without a hint; it also bounds how long the pusher
        # takes to see that the cluster is stopping.
        self.backstop = float(Conf.POLL)
        self._listener: psycopg.Connection | None = None
        self._listener_pid = 0
        self._reconnect_delay = 0.0
        self._next_run_at: datetime | None = None
        self._heartbeat_at = 0.0
        self._started_at = timezone.now()
        self._keeper: services.LeaseKeeper | None = None

    def __getstate__(self) -> tuple:
        return self.list_key, self._info

    def __setstate__(self, state: tuple) -> None:
        self.list_key, self._info = state
        self.connection = self.get_connection(self.list_key)
        self.cache = self.get_cache()
        self._reset()

    @property
    def queue(self) -> str:
        return self.list_key

    def info(self) -> str:
        if not self._info:
            self._info = f"jobs.Job table on {Conf.ORM} (LISTEN/NOTIFY)"
        return self._info

    def ping(self) -> bool:
        with connections[Conf.ORM].cursor() as cursor:
            cursor.execute("SELECT 1")
        return True

    # What django-q2's scheduler and async_task call.
    def enqueue(self, task: str) -> int:
        """Turn a django-q2 task (a Schedule's run) into a job of the jobs layer.

        The task's function must name a ``@task`` (``Schedule(func="jobs.tasks.prune")``);
        with the Schedule's ``intended_date_kwarg="scheduled_for"``, each scheduled run is one
        job however many clusters' schedulers see it.
        """
        package = SignedPackage.loads(task)
        name = package["func"]
        if not isinstance(name, str):
            raise JobNotRegistered("django-q2 tasks must name a @task; use its enqueue()")
        job_task = task_named(name)  # JobNotRegistered: nothing but @tasks is queued
        if package.get("args"):
            raise ValueError(f"job {name!r}: a Schedule passes keyword arguments only (kwargs)")
        kwargs = dict(package.get("kwargs") or {})
        scheduled_for = kwargs.pop("scheduled_for", None)
        unique_key = None
        if scheduled_for:
            unique_key = f"schedule:{package.get('group') or name}:{scheduled_for}"[:200]
        result = job_task.using(
            target=f"schedule:{package.get('group') or name}", unique_key=unique_key
        ).enqueue(**kwargs)
        return int(result.id)

    def acknowledge(self, task_id: int) -> None:
        """Nothing to do: the attempt's finish statement recorded its outcome."""

    def fail(self, task_id: int) -> None:
        """Nothing to do: a task the pusher could not hand over comes back when its lease ends."""

    def delete(self, task_id: int) -> None:
        """Jobs are not deleted through django-q2; staff discard them in the admin."""

    def queue_size(self) -> int:
        from jobs.models import Job

        return Job.objects.filter(
            queue=self.queue, status__in=Job.WAITING, run_at__lte=timezone.now()
        ).count()

    def lock_size(self) -> int:
        from jobs.models import Job

        return Job.objects.filter(queue=self.queue, status=Job.Status.RUNNING).count()

    def purge_queue(self) -> None:
        raise NotImplementedError("discard jobs in the admin (Dead letters / Jobs) instead")

    def delete_queue(self) -> None:
        raise NotImplementedError("discard jobs in the admin (Dead letters / Jobs) instead")

    def set_stat(self, key: str, value: str, timeout: int) -> Any:
        """django-q2's own cluster statistics (the cache); after a database restart, reconnect."""
        try:
            return super().set_stat(key, value, timeout)
        except DatabaseError:
            db.close_old_connections()
            return super().set_stat(key, value, timeout)

    # What the cluster's pusher calls in its loop.
    def dequeue(self) -> list[tuple[int, str]] | None:
        """Claim due jobs; when none is due, wait once for a hint or a run_at and try again.

        Returns after at most about ``backstop`` seconds so that the pusher sees the cluster's
        stop event. Database errors are logged and retried with a growing delay; the pusher
        never dies of them.
        """
        try:
            listener = self._listen()
            self._heartbeat(listener)
            tasks = self._claim(listener)
            if not tasks:
                self._wait(listener)
                tasks = self._claim(listener)
            self._reconnect_delay = 0.0
            return tasks or None
        except psycopg.Error as error:
            self._drop_listener()
            self._reconnect_delay = min(max(self._reconnect_delay * 2, 0.25), MAX_RECONNECT_DELAY)
            logger.warning(
                "queue %s: database unavailable (%s); retrying in %.2fs",
                self.queue,
                str(error).strip() or type(error).__name__,
                self._reconnect_delay,
            )
            time.sleep(self._reconnect_delay)
            return None

    def close(self) -> None:
        """Close the claiming connection (the pusher's process exit does it too) and stop
        renewing what this broker claimed."""
        self._drop_listener()
        if self._keeper is not None:
            self._keeper.release_all()

    def _listen(self) -> psycopg.Connection:
        if self._listener is not None and self._listener_pid != os.getpid():
            # Inherited through fork: the socket belongs to the parent, never use or close it.
            self._listener = None
        if self._listener is None or self._listener.closed:
            listener = psycopg.connect(**listen_connection_params(Conf.ORM))
            # A claim lost in a database crash only makes its jobs claimable again when their
            # lease ends (at-least-once, as a worker crash); jobs are idempotent. Skipping the
            # WAL flush per claim saves a commit's fdatasync.
            listener.execute("SET synchronous_commit = off")
            listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel_for(self.queue))))
            self._listener, self._listener_pid = listener, os.getpid()
        return self._listener

    def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and self._listener_pid == os.getpid():
            with contextlib.suppress(psycopg.Error):
                listener.close()

    def _claim(self, listener: psycopg.Connection) -> list[tuple[int, str]]:
        with listener.cursor() as cursor:
            worker = self._worker_name()
            claims, self._next_run_at = services.claim(
                cursor, self.queue, limit=self.bulk, worker=worker
            )
        if not claims:
            return []
        if self._keeper is None or self._keeper.holder != worker:
            # Per process: the pusher renews what it claimed until a worker takes it over.
            self._keeper = services.LeaseKeeper(holder=worker)
        self._keeper.hold(claims)
        return [(claims[0]["id"], self._package(claims))]

    @staticmethod
    def _package(claims: list[dict]) -> str:
        """The signed django-q2 task that runs these attempts, in order, in one worker.

        One task for what one claim took: django-q2's hand-offs between its pusher, worker
        and monitor processes cost more CPU than a small job, so a backlog pays them once per
        claim (``Q_BULK`` jobs) instead of once per job.
        """
        first = claims[0]
        task = {
            "id": f"{first['id']}-{first['attempt']}",
            "name": f"{first['name']}#{first['id']}",
            "func": EXECUTE_BATCH,
            "args": (claims,),
            "kwargs": {},
            "timeout": sum(claim["timeout"] for claim in claims),
            "started": timezone.now(),
        }
        if len(claims) > 1:
            task["name"] += f"+{len(claims) - 1}"
        return SignedPackage.dumps(task)

    def _wait(self, listener: psycopg.Connection) -> None:
        """Sleep until a hint, the earliest run_at ahead, or the backstop, whichever is first.

        A hint's payload is the run_at of a job that is not due yet (empty when it is): that
        only moves the timer, without a claim.
        """
        deadline = time.monotonic() + self.backstop
        while True:
            timeout = deadline - time.monotonic()
            if self._next_run_at is not None:
                due_in = (self._next_run_at - timezone.now()).total_seconds()
                timeout = min(timeout, due_in)
            if timeout <= 0:
                break
            hint = next(iter(listener.notifies(timeout=timeout, stop_after=1)), None)
            if hint is None:
                break
            at = _hint_time(hint.payload)
            if at is None:
                break
            if self._next_run_at is None or at < self._next_run_at:
                self._next_run_at = at
        # Hints that piled up meanwhile are one wake-up's worth, not one each.
        for _ in listener.notifies(timeout=0):
            pass

    def _worker_name(self) -> str:
        return f"{Conf.CLUSTER_NAME}@{socket.gethostname()}:{os.getpid()}"[:100]

    def _heartbeat(self, listener: psycopg.Connection) -> None:
        if time.monotonic() < self._heartbeat_at:
            return
        self._heartbeat_at = time.monotonic() + HEARTBEAT_SECONDS
        listener.execute(
            QUERIES["heartbeat"],
            {
                "name": Conf.CLUSTER_NAME,
                "queue": self.queue,
                "host": socket.gethostname()[:255],
                "pid": os.getppid(),  # the cluster's sentinel: one row per cluster
                "workers": _live_workers(),
                "now": timezone.now(),
            },
        )


def _hint_time(payload: str) -> datetime | None:
    if not payload:
        return None
    try:
        return datetime.fromtimestamp(float(payload), tz=UTC)
    except ValueError:
        return None


def _live_workers() -> int:
    """Worker processes of this cluster: the sentinel's children but the pusher and monitor.

    Read from /proc (Linux); elsewhere, the configured count.
    """
    parent = os.getppid()
    try:
        with open(f"/proc/{parent}/task/{parent}/children") as children:
            count = len(children.read().split()) - 2
    except OSError:
        return int(Conf.WORKERS)
    return max(count, 0)
