"""What changes job state: enqueue, claim, run one attempt, retry or bury, and staff's actions.

The Job row is the queue entry, the state and (with its attempts) the log of one unit of work;
the statements are in jobs/sql/queries.sql. A worker cluster claims due rows with one statement
(jobs.broker), runs :func:`execute` for each, and the attempt's outcome is one more statement in
the job's own transaction. A worker killed mid-attempt leaves its job running with a lease
(run_at) that the next claim sees expire: that attempt is logged as crashed and the job runs
again.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone
from django_q.exceptions import TimeoutException

from core.observability import log_context
from core.redaction import redact
from jobs import signals
from jobs.errors import JobNotRegistered, PermanentError
from jobs.fingerprints import fingerprint
from jobs.metrics import JOB_ATTEMPTS, JOBS_DEAD
from jobs.models import Job, JobAction
from jobs.registry import JobType, get_job_type
from jobs.sql import QUERIES

logger = logging.getLogger(__name__)
MAX_ERROR_CHARS = 2000
MAX_TRACEBACK_CHARS = 20000


@dataclass(frozen=True)
class Running:
    """The attempt a worker runs: what the claim returned (see ``current_job``)."""

    id: int
    name: str
    kwargs: dict
    attempt: int
    max_attempts: int
    timeout: int
    crashed: bool = False
    exhausted: bool = False

    @property
    def pk(self) -> int:
        return self.id

    @property
    def attempts(self) -> int:
        return self.attempt


current_job: contextvars.ContextVar[Running | None] = contextvars.ContextVar(
    "current_job", default=None
)


def _worker() -> str:
    # Forked workers must not report their parent's pid.
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def enqueue_params(name: str) -> dict[str, object]:
    """The job-type parameters of the ``jobs_enqueue(...)`` SQL function, for another app's
    statement that stores its own row and that row's job in one round trip (billing's
    ingest_event): ``job_name``, ``job_queue``, ``job_max_attempts``, ``job_timeout``."""
    job_type = get_job_type(name)
    return {
        "job_name": job_type.name,
        "job_queue": job_type.queue,
        "job_max_attempts": job_type.max_attempts,
        "job_timeout": job_type.timeout,
    }


def enqueue(
    name: str,
    *,
    target: str = "",
    run_at: datetime | None = None,
    unique_key: str | None = None,
    **kwargs: object,
) -> Job:
    """Create a job in the caller's transaction, due at `run_at` (now by default).

    One statement: the row, and a NOTIFY that wakes the queue's workers when the transaction
    commits (a rolled-back enqueue neither runs nor wakes anyone). With ``unique_key``, a
    second enqueue of the same key returns the existing job instead of creating another: the
    guard for side effects that must happen once.
    """
    job_type = get_job_type(name)
    now = timezone.now()
    run_at = run_at or now
    with connection.cursor() as cursor:
        cursor.execute(
            QUERIES["enqueue"],
            {
                "name": name,
                "queue": job_type.queue,
                "kwargs": json.dumps(kwargs),
                "target": target,
                "unique_key": unique_key,
                "max_attempts": job_type.max_attempts,
                "timeout": job_type.timeout,
                "run_at": run_at,
                "now": now,
            },
        )
        job_id = cursor.fetchone()[0]
    if job_id is None:
        return Job.objects.get(unique_key=unique_key)
    job = Job(
        pk=job_id,
        name=name,
        kwargs=kwargs,
        target=target,
        queue=job_type.queue,
        unique_key=unique_key,
        max_attempts=job_type.max_attempts,
        timeout=job_type.timeout,
        run_at=run_at,
    )
    job._state.adding, job._state.db = False, connection.alias
    return job


# The claim statement's columns that make a Running attempt (the arguments of execute).
CLAIMED_FIELDS = ("id", "name", "attempt", "max_attempts", "timeout", "crashed", "exhausted")


def claim(
    cursor: Any, queue: str, *, limit: int, worker: str, now: datetime | None = None
) -> tuple[list[dict], datetime | None]:
    """Claim up to `limit` due jobs of `queue` (the ``claim`` statement) on `cursor`.

    Returns the claimed attempts, in run_at order, as the arguments of :func:`execute`, and
    the earliest run_at still ahead (None: nothing is scheduled). `cursor` is a Django cursor
    or a psycopg one (the broker's own connection).
    """
    cursor.execute(
        QUERIES["claim"],
        {
            "queue": queue,
            "limit": limit,
            "now": now or timezone.now(),
            "lease_margin": settings.JOBS_LEASE_MARGIN,
            "batch_seconds": settings.JOBS_BATCH_SECONDS,
            "worker": worker,
        },
    )
    columns = [column.name for column in cursor.description]
    rows = [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]
    next_run_at = rows[0]["next_run_at"] if rows else None
    claims = [
        {
            **{field: row[field] for field in CLAIMED_FIELDS},
            # Django reads jsonb as text on its connections, psycopg as Python objects.
            "kwargs": row["kwargs"]
            if isinstance(row["kwargs"], dict)
            else json.loads(row["kwargs"]),
        }
        for row in rows
        if row["id"] is not None
    ]
    return claims, next_run_at


class LostLease(Exception):
    """The attempt ran past its lease and another worker took the job over."""


def execute(claimed: dict) -> str:
    """Run one claimed attempt of a job: what django-q2's workers call. Never raises.

    An atomic job's work and its outcome commit together or not at all; a non-atomic job's
    outcome is written after its work.
    """
    run = Running(**claimed)
    try:
        job_type = get_job_type(run.name)
    except JobNotRegistered as exc:
        _fail(run, None, exc, time.monotonic())
        return "failed"
    if run.exhausted:
        _bury_exhausted(run, job_type)
        return "dead"
    started = time.monotonic()
    token = current_job.set(run)
    with log_context(f"job={run.id} {run.name} attempt={run.attempt}"):
        try:
            with _lease_kept(run, job_type):
                if job_type.atomic:
                    with transaction.atomic():
                        job_type.func(**run.kwargs)
                        _succeed(run, started)
                else:
                    job_type.func(**run.kwargs)
                    _succeed(run, started)
        except (Exception, TimeoutException) as exc:
            # TimeoutException is django-q2's SystemExit for an attempt over its time limit:
            # record it as a failure like any other, so the job retries instead of vanishing.
            _fail(run, job_type, exc, started)
            return "failed"
        finally:
            current_job.reset(token)
    return "succeeded"


def execute_batch(batch: list[dict]) -> list[str]:
    """Run the attempts one claim took, in claim order, each as :func:`execute` does.

    Each attempt gets its own time limit (SIGALRM, as django-q2 does for a single task;
    django-q2's own limit for the batch is the sum): a job over its timeout fails alone and the
    next one runs.
    """
    outcomes = []
    previous = signal.getsignal(signal.SIGALRM)
    try:
        for claimed in batch:
            signal.signal(signal.SIGALRM, _over_time(claimed["timeout"]))
            signal.alarm(max(1, int(claimed["timeout"])))
            try:
                outcomes.append(execute(claimed))
            finally:
                signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    return outcomes


def _over_time(seconds: int):
    def raise_timeout(_signum: int, _frame: object) -> None:
        raise TimeoutException(f"Task exceeded maximum timeout value ({seconds} seconds)")

    return raise_timeout


def _crash(run: Running) -> str:
    return f"worker died during attempt {run.attempt - (0 if run.exhausted else 1)}"


def _as_job(run: Running, status: str, **fields: object) -> Job:
    """An unsaved picture of the job for signal receivers (they read ids and attempts)."""
    values = {
        "pk": run.id,
        "name": run.name,
        "kwargs": run.kwargs,
        "status": status,
        "attempts": run.attempt,
        "max_attempts": run.max_attempts,
        "timeout": run.timeout,
        **fields,
    }
    job = Job(**values)
    job._state.adding, job._state.db = False, connection.alias
    return job


def _record_outcome(job: Job, job_type: JobType | None, outcome: str) -> None:
    """Hand an outcome the job function cannot write itself to its type (JobType.on_outcome)."""
    if job_type is not None and job_type.on_outcome is not None:
        job_type.on_outcome(job, outcome)


def _duration_ms(started: float) -> int:
    return max(0, int((time.monotonic() - started) * 1000))


def _succeed(run: Running, started: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            QUERIES["succeed"],
            {
                "id": run.id,
                "attempt": run.attempt,
                "now": timezone.now(),
                "duration_ms": _duration_ms(started),
                "worker": _worker(),
            },
        )
        if cursor.fetchone() is None:
            raise LostLease(f"job #{run.id} was taken over while attempt {run.attempt} ran")
    transaction.on_commit(lambda: JOB_ATTEMPTS.labels(run.name, "succeeded").inc())


def _fail(run: Running, job_type: JobType | None, exc: BaseException, started: float) -> None:
    now = timezone.now()
    # Stored errors are shown in the admin: no secret may ride along in a message or traceback.
    error = redact(f"{exc.__class__.__name__}: {exc}")[:MAX_ERROR_CHARS]
    dead = job_type is None or isinstance(exc, PermanentError) or run.attempt >= run.max_attempts
    retry_at = None if dead else now + job_type.backoff(run.attempt)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            QUERIES["fail"],
            {
                "id": run.id,
                "attempt": run.attempt,
                "status": Job.Status.DEAD if dead else Job.Status.RETRYING,
                "retry_at": retry_at,
                "now": now,
                "error": error,
                "fingerprint": fingerprint(error),
                "traceback": redact(traceback.format_exc())[-MAX_TRACEBACK_CHARS:],
                "duration_ms": _duration_ms(started),
                "worker": _worker(),
            },
        )
        if cursor.fetchone() is None:
            logger.warning(
                "attempt %s lost its lease; leaving the job to its new owner", run.attempt
            )
            return
        JOB_ATTEMPTS.labels(run.name, "failed").inc()
        if dead:
            job = _as_job(run, Job.Status.DEAD, finished_at=now, last_error=error)
            _buried(job, job_type, error)
            return
    logger.warning("attempt %s failed, retry at %s: %s", run.attempt, retry_at.isoformat(), error)


def _bury_exhausted(run: Running, job_type: JobType) -> None:
    """The last attempt crashed: dead without running again."""
    now = timezone.now()
    error = f"{_crash(run)}, the last of {run.max_attempts}"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            QUERIES["bury_exhausted"],
            {
                "id": run.id,
                "attempt": run.attempt,
                "now": now,
                "error": error,
                "fingerprint": fingerprint(error),
            },
        )
        if cursor.fetchone() is not None:
            job = _as_job(run, Job.Status.DEAD, finished_at=now, last_error=error)
            _buried(job, job_type, error)


def _buried(job: Job, job_type: JobType | None, error: str) -> None:
    """Inside the transaction that made `job` dead: its type's outcome now, alerts on commit."""
    _record_outcome(job, job_type, Job.Status.DEAD)
    JOBS_DEAD.labels(job.name).inc()
    transaction.on_commit(lambda: signals.job_dead.send(sender=job.name, job=job))
    logger.error("job #%s %s is dead after %s attempts: %s", job.pk, job.name, job.attempts, error)


@contextlib.contextmanager
def _lease_kept(run: Running, job_type: JobType) -> Iterator[None]:
    """For job types with a ``heartbeat``: keep a short lease while the attempt runs.

    A long job (a prebooking armer waiting for its instant) would otherwise hold a lease of
    its whole timeout, and a worker killed meanwhile would leave it unclaimed that long. With
    a heartbeat of h seconds the lease is h seconds ahead, renewed every h/3 from a thread of
    its own (own connection), so the job is claimed again within h seconds of a crash.
    """
    if not job_type.heartbeat:
        yield
        return
    stop = threading.Event()

    def renew() -> None:
        try:
            while True:
                try:
                    extend_lease(run, timezone.now() + timedelta(seconds=job_type.heartbeat))
                except Exception:
                    logger.exception("could not extend the lease of job #%s", run.id)
                    close_old_connections()
                if stop.wait(job_type.heartbeat / 3):
                    return
        finally:
            connection.close()

    keeper = threading.Thread(target=renew, name=f"lease-{run.id}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()


def extend_lease(run: Running, until: datetime) -> None:
    """Move a running attempt's lease to `until` (the ``extend_lease`` statement)."""
    with connection.cursor() as cursor:
        cursor.execute(
            QUERIES["extend_lease"], {"id": run.id, "attempt": run.attempt, "until": until}
        )


def _notify(queue: str) -> None:
    """Wake the queue's workers when the current transaction commits."""
    with connection.cursor() as cursor:
        cursor.execute(QUERIES["notify"], {"queue": queue})


@dataclass(frozen=True)
class ActionResult:
    done: bool
    reason: str = ""


REPLAYABLE = (Job.Status.DEAD, Job.Status.RETRYING, Job.Status.RESOLVED, Job.Status.DISCARDED)


def replay(
    job_id: int, *, actor: object = None, force: bool = False, note: str = ""
) -> ActionResult:
    """Run a job again now with a fresh budget of attempts. A succeeded job only when forced."""
    allowed = (*REPLAYABLE, Job.Status.SUCCEEDED) if force else REPLAYABLE
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            return ActionResult(False, "no such job")
        if job.status not in allowed:
            reason = "already succeeded (use force)" if job.status == "succeeded" else job.status
            return ActionResult(False, reason)
        before = job.status
        job_type = get_job_type(job.name)
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.QUEUED,
            run_at=timezone.now(),
            max_attempts=F("attempts") + job_type.max_attempts,
            finished_at=None,
        )
        job.refresh_from_db()
        _audit(job, JobAction.Kind.REPLAY, actor, before, forced=force, note=note)
        _record_outcome(job, job_type, JobAction.Kind.REPLAY)
        _notify(job.queue)
    return ActionResult(True)


def _settle(job_id: int, kind: str, status: str, actor: object, note: str) -> ActionResult:
    settleable = (Job.Status.DEAD, Job.Status.RETRYING, Job.Status.QUEUED)
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            return ActionResult(False, "no such job")
        if job.status not in settleable:
            return ActionResult(False, job.status)
        before = job.status
        job.status = status
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at"])
        _audit(job, kind, actor, before, note=note)
        _record_outcome(job, _job_type_or_none(job.name), kind)
    return ActionResult(True)


def _job_type_or_none(name: str) -> JobType | None:
    try:
        return get_job_type(name)
    except JobNotRegistered:
        return None  # a job type since removed can still be settled


def resolve(job_id: int, *, actor: object = None, note: str = "") -> ActionResult:
    """Stop retrying a failed or dead job without running it: the cause was fixed elsewhere."""
    return _settle(job_id, JobAction.Kind.RESOLVE, Job.Status.RESOLVED, actor, note)


def discard(job_id: int, *, actor: object = None, note: str = "") -> ActionResult:
    """Stop retrying a failed or dead job without running it: it should not happen at all."""
    return _settle(job_id, JobAction.Kind.DISCARD, Job.Status.DISCARDED, actor, note)


def _audit(
    job: Job, kind: str, actor: object, before: str, *, forced: bool = False, note: str = ""
) -> None:
    is_user = getattr(actor, "pk", None) is not None
    JobAction.objects.create(
        job=job,
        kind=kind,
        actor=actor if is_user else None,
        actor_name=(actor.get_username() if is_user else str(actor or "system"))[:150],
        forced=forced,
        status_before=before,
        note=note[:300],
    )
    logger.info("%s of job #%s (%s) by %s", kind, job.pk, before, actor or "system")
