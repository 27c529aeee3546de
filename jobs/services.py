"""What changes job state: enqueue, run one attempt, retry or bury, and staff's replay.

Delivery rides on django-q2 (one OrmQ row per attempt, in the caller's transaction). A retry
is a new OrmQ row whose ``lock`` is the backoff time: the ORM broker only hands out rows whose
lock has passed, so the delay needs no scheduler (django-q2's runs only every 30 s). A worker
killed mid-attempt leaves its OrmQ row unacknowledged; django-q2 hands it out again after
``Q_CLUSTER["retry"]`` seconds and the lease on the job row tells us the attempt crashed.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import socket
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone
from django_q.conf import Conf
from django_q.exceptions import TimeoutException
from django_q.humanhash import uuid as humanhash_uuid
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from config.observability import log_context
from config.redaction import redact
from jobs import signals
from jobs.broker import channel_for
from jobs.errors import PermanentError
from jobs.metrics import JOB_ATTEMPTS, JOBS_DEAD
from jobs.models import Job, JobAction, JobAttempt
from jobs.registry import JobType, get_job_type

logger = logging.getLogger(__name__)
current_job: contextvars.ContextVar[Job | None] = contextvars.ContextVar(
    "current_job", default=None
)
WORKER = f"{socket.gethostname()}:{os.getpid()}"
LEASE_MARGIN = timedelta(seconds=float(os.environ.get("JOBS_LEASE_MARGIN", "15")))
MAX_ERROR_CHARS = 2000
MAX_TRACEBACK_CHARS = 20000


JOB_TABLE = Job._meta.db_table
QUEUE_TABLE = OrmQ._meta.db_table
ID_BLOCK = 50

# One statement stores the job and its delivery and wakes the queue's listeners: the work of
# three round trips in one (the webhook's ack time is mostly round trips). `source` is an
# optional INSERT ... RETURNING id of the caller (see enqueue_on_insert) whose new id goes
# into the job's kwargs; without a source row (a duplicate) nothing is enqueued.
_JOB_COLUMNS = (
    "id, name, kwargs, target, queue, unique_key, status, attempts, max_attempts, run_at, "
    "last_error, created_at"
)
_ENQUEUE_SQL = f"""
WITH {{source}}
job AS (
    INSERT INTO {JOB_TABLE} ({_JOB_COLUMNS})
    SELECT %(job_id)s, %(name)s, %(kwargs)s::jsonb {{kwarg}}, %(target)s {{target}}, %(queue)s,
           %(unique_key)s, 'queued', 0, %(max_attempts)s, %(run_at)s, '', now()
    {{from_source}}
    ON CONFLICT (unique_key) DO NOTHING
    RETURNING id
),
delivery AS (
    INSERT INTO {QUEUE_TABLE} (key, payload, lock)
    SELECT %(queue)s, %(payload)s, %(run_at)s FROM job
    RETURNING id
)
SELECT {{returning}}, (SELECT id FROM job), (SELECT pg_notify(%(channel)s, '') FROM delivery)
"""  # noqa: S608 - table names are ours; every value is a parameter


class _JobIds:
    """Job ids taken from the sequence a block at a time, so a delivery can name its job
    before the job row exists (they are written by the same statement)."""

    def __init__(self) -> None:
        self.pid = 0
        self.free: list[int] = []

    def next(self) -> int:
        if self.pid != os.getpid():  # a forked worker must not reuse its parent's block
            self.pid, self.free = os.getpid(), []
        if not self.free:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [JOB_TABLE, ID_BLOCK],
                )
                self.free = [row[0] for row in reversed(cursor.fetchall())]
        return self.free.pop()


_job_ids = _JobIds()


def _package(job_id: int, job_type: JobType) -> str:
    """The signed django-q2 task that runs one attempt of job `job_id` (what async_task builds)."""
    tag = humanhash_uuid()
    task = {
        "id": tag[1],
        "name": f"{job_type.name}#{job_id}",
        "func": "jobs.services.execute",
        "args": (job_id,),
        "kwargs": {},
        "timeout": job_type.timeout,
        "started": timezone.now(),
    }
    if Conf.ACK_FAILURES:
        task["ack_failure"] = True
    return SignedPackage.dumps(task)


def _run_enqueue(
    job_type: JobType,
    *,
    kwargs: dict,
    target: str,
    run_at: datetime | None,
    unique_key: str | None,
    source: tuple[str, list, str, str] | None = None,
) -> tuple[int | None, int | None]:
    """Insert (source row,) job and delivery in one statement; (source id, job id) inserted."""
    job_id = _job_ids.next()
    params = {
        "job_id": job_id,
        "name": job_type.name,
        "kwargs": json.dumps(kwargs),
        "target": target,
        "queue": job_type.queue,
        "unique_key": unique_key,
        "max_attempts": job_type.max_attempts,
        "run_at": run_at or timezone.now(),
        "payload": _package(job_id, job_type),
        "channel": channel_for(job_type.queue),
    }
    if source is None:
        sql = _ENQUEUE_SQL.format(
            source="", kwarg="", target="", from_source="", returning="NULL::bigint"
        )
    else:
        source_sql, source_params, id_kwarg, target_prefix = source
        params.update({f"source_{i}": value for i, value in enumerate(source_params)})
        params["id_kwarg"] = id_kwarg
        params["target"] = target_prefix
        sql = _ENQUEUE_SQL.format(
            source=f"source AS ({source_sql}),",
            kwarg="|| jsonb_build_object(%(id_kwarg)s, source.id)",
            target="|| source.id",
            from_source="FROM source",
            returning="(SELECT id FROM source)",
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        source_id, inserted_job = cursor.fetchone()[:2]
    return source_id, inserted_job


def enqueue(
    name: str,
    *,
    target: str = "",
    run_at: datetime | None = None,
    unique_key: str | None = None,
    **kwargs: object,
) -> Job:
    """Create a job and its delivery in the caller's transaction; both commit or neither does.

    With ``unique_key``, a second enqueue of the same key returns the existing job instead of
    creating another: the guard for side effects that must happen once.
    """
    job_type = get_job_type(name)
    run_at = run_at or timezone.now()
    _, job_id = _run_enqueue(
        job_type, kwargs=kwargs, target=target, run_at=run_at, unique_key=unique_key
    )
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
        run_at=run_at,
    )
    job._state.adding, job._state.db = False, connection.alias
    return job


def enqueue_on_insert(
    insert_sql: str,
    params: list,
    *,
    name: str,
    id_kwarg: str,
    target_prefix: str,
    **kwargs: object,
) -> int | None:
    """Run the caller's ``INSERT ... RETURNING id`` and, when it inserts a row, enqueue job
    `name` with ``{id_kwarg: new id}`` in the same statement (one round trip, atomic without a
    transaction). Returns the new row's id, or None when the insert did nothing (a conflict).

    `insert_sql` refers to its parameters as ``%(source_0)s``, ``%(source_1)s``, ...
    """
    # Alone, the statement is its own transaction. Inside the caller's, a savepoint keeps a
    # failed insert (e.g. a value PostgreSQL refuses) from aborting the caller's transaction.
    savepoint = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    with savepoint:
        source_id, _ = _run_enqueue(
            get_job_type(name),
            kwargs=kwargs,
            target="",
            run_at=None,
            unique_key=None,
            source=(insert_sql, params, id_kwarg, target_prefix),
        )
    return source_id


def _deliver(job: Job, job_type: JobType) -> None:
    """Queue one more attempt of an existing job, due at ``job.run_at``."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {QUEUE_TABLE} (key, payload, lock) VALUES (%s, %s, %s);"  # noqa: S608
            "SELECT pg_notify(%s, '')",
            [job.queue, _package(job.pk, job_type), job.run_at, channel_for(job.queue)],
        )


@dataclass(frozen=True)
class Claim:
    job: Job
    job_type: JobType
    attempt: JobAttempt


def _claim(job_id: int) -> Claim | None:
    """Take the job for one attempt, or None when there is nothing to do."""
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None:
            logger.info("job #%s is gone or being claimed elsewhere", job_id)
            return None
        job_type = get_job_type(job.name)
        if job.status == Job.Status.RUNNING:
            if job.lease_expires_at and job.lease_expires_at > now:
                # Someone runs it now; come back when their lease ends in case they die.
                job.run_at = job.lease_expires_at
                _deliver(job, job_type)
                return None
            _record_crash(job, now)
            if job.attempts >= job.max_attempts:
                _bury(job, "worker died during the last attempt", now)
                return None
            # Tell mirrors (an app's own status column) of the crash now: without this they
            # show the state before the crashed attempt until the next attempt ends.
            job.run_at = now
            signals.job_failed.send(sender=job.name, job=job, error=job.last_error, dead=False)
        elif job.status not in Job.WAITING:
            logger.info("job #%s is %s: nothing to do", job_id, job.status)
            return None
        elif job.run_at > now + timedelta(seconds=1):
            logger.info("job #%s is not due until %s", job_id, job.run_at.isoformat())
            return None
        job.attempts += 1
        job.status = Job.Status.RUNNING
        job.started_at = now
        job.lease_expires_at = now + timedelta(seconds=job_type.timeout) + LEASE_MARGIN
        job.save(update_fields=["attempts", "status", "started_at", "lease_expires_at", "run_at"])
        attempt = JobAttempt.objects.create(
            job=job, number=job.attempts, started_at=now, worker=WORKER
        )
    return Claim(job=job, job_type=job_type, attempt=attempt)


def _record_crash(job: Job, now: datetime) -> None:
    JobAttempt.objects.filter(job=job, number=job.attempts, outcome="running").update(
        outcome=JobAttempt.Outcome.CRASHED,
        finished_at=now,
        error="The worker stopped during this attempt (killed, out of memory or timed out).",
    )
    job.last_error = "worker died during attempt"
    logger.warning("job #%s attempt %s crashed", job.pk, job.attempts)


def _bury(job: Job, error: str, now: datetime) -> None:
    job.status = Job.Status.DEAD
    job.finished_at = now
    job.lease_expires_at = None
    job.last_error = error[:MAX_ERROR_CHARS]
    job.save(update_fields=["status", "finished_at", "lease_expires_at", "last_error"])
    signals.job_failed.send(sender=job.name, job=job, error=job.last_error, dead=True)
    JOBS_DEAD.labels(job.name).inc()
    transaction.on_commit(lambda: signals.job_dead.send(sender=job.name, job=job))
    logger.error("job #%s %s is dead after %s attempts: %s", job.pk, job.name, job.attempts, error)


class LostLease(Exception):
    """The attempt ran past its lease and another worker took the job over."""


def execute(job_id: int) -> str:
    """Run one attempt of a job: the function django-q2 workers call. Idempotent per delivery."""
    claim = _claim(job_id)
    if claim is None:
        return "skipped"
    job, job_type, attempt = claim.job, claim.job_type, claim.attempt
    started = time.monotonic()
    token = current_job.set(job)
    with log_context(f"job={job.pk} {job.name} attempt={job.attempts}"):
        try:
            if job_type.atomic:
                with transaction.atomic():
                    job_type.func(**job.kwargs)
                    _finish(job, attempt, started)
            else:
                job_type.func(**job.kwargs)
                with transaction.atomic():
                    _finish(job, attempt, started)
        except (Exception, TimeoutException) as exc:
            # TimeoutException is django-q2's SystemExit for an attempt over its time limit:
            # record it as a failure like any other, so the job retries instead of vanishing.
            _fail(job, job_type, attempt, exc, started)
            return "failed"
        finally:
            current_job.reset(token)
        logger.info("succeeded in %.0f ms", (time.monotonic() - started) * 1000)
    return "succeeded"


def _finish(job: Job, attempt: JobAttempt, started: float) -> None:
    now = timezone.now()
    won = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts).update(
        status=Job.Status.SUCCEEDED, finished_at=now, lease_expires_at=None, last_error=""
    )
    if not won:
        raise LostLease(f"job #{job.pk} was taken over while attempt {job.attempts} ran")
    JobAttempt.objects.filter(pk=attempt.pk).update(
        outcome=JobAttempt.Outcome.SUCCEEDED,
        finished_at=now,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    transaction.on_commit(lambda: JOB_ATTEMPTS.labels(job.name, "succeeded").inc())


def _fail(
    job: Job, job_type: JobType, attempt: JobAttempt, exc: BaseException, started: float
) -> None:
    now = timezone.now()
    # Stored errors are shown in the admin: no secret may ride along in a message or traceback.
    error = redact(f"{exc.__class__.__name__}: {exc}")[:MAX_ERROR_CHARS]
    with transaction.atomic():
        current = Job.objects.select_for_update().get(pk=job.pk)
        if current.status != Job.Status.RUNNING or current.attempts != job.attempts:
            logger.warning(
                "attempt %s lost its lease; leaving the job to its new owner", job.attempts
            )
            return
        JobAttempt.objects.filter(pk=attempt.pk).update(
            outcome=JobAttempt.Outcome.FAILED,
            finished_at=now,
            duration_ms=int((time.monotonic() - started) * 1000),
            error=error,
            traceback=redact(traceback.format_exc())[-MAX_TRACEBACK_CHARS:],
        )
        JOB_ATTEMPTS.labels(job.name, "failed").inc()
        if isinstance(exc, PermanentError) or current.attempts >= current.max_attempts:
            _bury(current, error, now)
            return
        current.status = Job.Status.RETRYING
        current.run_at = now + job_type.backoff(current.attempts)
        current.lease_expires_at = None
        current.last_error = error
        current.save(update_fields=["status", "run_at", "lease_expires_at", "last_error"])
        signals.job_failed.send(sender=current.name, job=current, error=error, dead=False)
        _deliver(current, job_type)
    logger.warning(
        "attempt %s failed, retry at %s: %s", current.attempts, current.run_at.isoformat(), error
    )


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
            lease_expires_at=None,
        )
        job.refresh_from_db()
        _audit(job, JobAction.Kind.REPLAY, actor, before, forced=force, note=note)
        signals.job_action.send(sender=job.name, job=job, action=JobAction.Kind.REPLAY)
        _deliver(job, job_type)
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
        signals.job_action.send(sender=job.name, job=job, action=kind)
    return ActionResult(True)


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


STALLED_AFTER = timedelta(minutes=10)


def rescue_stalled(now: datetime | None = None, limit: int = 1000) -> int:
    """Deliver again jobs whose delivery is gone: due for 10 minutes and still waiting, or
    running with a lease long expired. A spare delivery is harmless (the claim finds the job
    taken or finished); a lost one would leave the job waiting for ever. Returns the count."""
    now = now or timezone.now()
    stalled = Job.objects.filter(
        models.Q(status__in=Job.WAITING, run_at__lt=now - STALLED_AFTER)
        | models.Q(status=Job.Status.RUNNING, lease_expires_at__lt=now - STALLED_AFTER)
    ).order_by("id")[:limit]
    count = 0
    for job in stalled:
        job.run_at = now
        _deliver(job, get_job_type(job.name))
        count += 1
    if count:
        logger.warning("delivered %s stalled jobs again", count)
    return count
