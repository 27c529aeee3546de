"""What changes job state: enqueue, claim, run one attempt, retry or bury, and staff's actions.

The Job row is the queue entry, the state and (with its attempts) the log of one unit of work
of a ``@task`` (jobs.backend); the statements are in jobs/sql/queries.sql. A worker cluster
claims due rows with one statement (jobs.broker), a worker process takes the batch over
(:func:`execute_batch`) and runs :func:`execute` for each, and the attempt's outcome is one more
statement in the job's own transaction. Whoever holds a claimed attempt renews its short lease
(run_at) every third of it (:class:`LeaseKeeper`); a worker killed mid-attempt stops renewing,
the next claim sees the lease expire, logs that attempt as crashed and runs the job again.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import signal
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone
from django_q.exceptions import TimeoutException
from django_tasks import TaskContext, TaskResultStatus
from django_tasks.signals import task_finished, task_started
from django_tasks.utils import get_module_path, normalize_json

from core.observability import log_context
from core.redaction import redact
from jobs import signals
from jobs.backend import JobsBackend, JobTask, result_of, task_named
from jobs.errors import JobNotRegistered, PermanentError
from jobs.fingerprints import fingerprint
from jobs.metrics import JOB_ATTEMPTS, JOBS_DEAD
from jobs.models import Job, JobAction, JobAttempt
from jobs.sql import QUERIES, prepared_cursor

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
    args: list = ()  # type: ignore[assignment]
    enqueued_at: datetime | None = None

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


def enqueue_params(task: JobTask) -> dict[str, object]:
    """The task's parameters of the ``jobs_enqueue(...)`` SQL function, for another app's
    statement that stores its own row and that row's job in one round trip (billing's
    ingest_event): ``job_name``, ``job_queue``, ``job_max_attempts``, ``job_timeout``."""
    return {
        "job_name": task.module_path,
        "job_queue": task.queue_name,
        "job_max_attempts": task.max_attempts,
        "job_timeout": task.timeout,
    }


# The claim statement's columns that make a Running attempt (the arguments of execute).
CLAIMED_FIELDS = (
    "id",
    "name",
    "attempt",
    "max_attempts",
    "timeout",
    "crashed",
    "exhausted",
    "enqueued_at",
)


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
            "lease": settings.JOBS_LEASE_SECONDS,
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
            "args": row["args"] if isinstance(row["args"], list) else json.loads(row["args"]),
        }
        for row in rows
        if row["id"] is not None
    ]
    return claims, next_run_at


class LostLease(Exception):
    """The attempt ran past its lease and another worker took the job over."""


def execute(claimed: dict, take_over: TakeOver | None = None) -> str:
    """Run one claimed attempt of a job: what django-q2's workers call. Never raises.

    An atomic job's work and its outcome commit together or not at all; a non-atomic job's
    outcome is written after its work. ``task_started`` and ``task_finished`` are sent around
    it (the finished one after the outcome committed). With the batch's `take_over` under
    way, an atomic job starts at once (its success is fenced on the attempt, so a lost one
    rolls back: "lost"); a non-atomic one, whose work no rollback undoes, waits to know that
    the attempt is still this process's.
    """
    run = Running(**claimed)
    try:
        task = task_named(run.name)
    except JobNotRegistered as exc:
        _fail(run, None, exc, time.monotonic())
        return "failed"
    if take_over is not None and take_over.lost(run.id, wait=not task.atomic):
        logger.warning("job #%s was taken over before it started", run.id)
        return "lost"
    if run.exhausted:
        _bury_exhausted(run, task)
        return "dead"
    started = time.monotonic()
    result = _attempt_result(run, task)
    task_started.send(JobsBackend, task_result=result)
    token = current_job.set(run)
    with log_context(f"job={run.id} {run.name} attempt={run.attempt}"):
        try:
            args = (TaskContext(task_result=result), *run.args) if task.takes_context else run.args
            if task.atomic:
                with transaction.atomic():
                    value = task.call(*args, **run.kwargs)
                    _succeed(run, started, value)
            else:
                value = task.call(*args, **run.kwargs)
                _succeed(run, started, value)
        except KeyboardInterrupt:
            raise
        except LostLease as exc:
            # Another worker runs the job now: its outcome is theirs to write.
            logger.warning("%s; its work was rolled back", exc)
            _finished(result, TaskResultStatus.FAILED, exc=exc)
            return "lost"
        except BaseException as exc:
            # SystemExit too (django-q2's TimeoutException for an attempt over its time limit
            # is one, as is a task's exit()): a failure like any other, so the job retries
            # instead of vanishing with its worker.
            _fail(run, task, exc, started)
            _finished(result, TaskResultStatus.FAILED, exc=exc)
            return "failed"
        finally:
            current_job.reset(token)
    _finished(result, TaskResultStatus.SUCCESSFUL, value=value)
    return "succeeded"


def _attempt_result(run: Running, task: JobTask):
    """The TaskResult of the attempt that starts (its context and the signals' argument).

    A first attempt needs no query; a later one reads the earlier attempts' errors and workers.
    """
    now = timezone.now()
    job = _as_job(
        run,
        Job.Status.RUNNING,
        worker=_worker(),
        started_at=now,
        created_at=run.enqueued_at,
        args=list(run.args),
    )
    earlier = (
        list(JobAttempt.objects.filter(job_id=run.id, number__lt=run.attempt))
        if run.attempt > 1
        else []
    )
    return result_of(job, task, attempts=earlier)


def _finished(result, status: str, *, value: object = None, exc: BaseException | None = None):
    from django_tasks.base import TaskError
    from django_tasks.utils import get_exception_traceback

    object.__setattr__(result, "status", status)
    object.__setattr__(result, "finished_at", timezone.now())
    if exc is not None:
        result.errors.append(
            TaskError(
                exception_class_path=get_module_path(type(exc)),
                traceback=get_exception_traceback(exc),
            )
        )
    else:
        object.__setattr__(result, "_return_value", _json_or_none(value))
    task_finished.send(JobsBackend, task_result=result)


def _json_or_none(value: object) -> object:
    """The task's return value as JSON would hold it; None when it cannot (not stored)."""
    if value is None:
        return None
    try:
        return normalize_json(value)
    except (TypeError, ValueError):
        logger.warning("return value of type %s not stored: not JSON", type(value).__name__)
        return None


def execute_batch(batch: list[dict]) -> list[str]:
    """Run the attempts one claim took, in claim order, each as :func:`execute` does.

    The worker process takes the batch over from its claimer (its name on the rows, and its
    lease keeper renewing their leases from then on) on the keeper's thread, while the first
    job starts; an attempt the claimer lost meanwhile (its lease passed and another worker
    claimed the job) is skipped, or rolled back (see :func:`execute`). Each attempt gets its
    own time limit (SIGALRM, as django-q2 does for a single task; django-q2's own limit for
    the batch is the sum): a job over its timeout fails alone and the next one runs.
    """
    take_over = KEEPER.take_over(batch)
    outcomes = []
    previous = signal.getsignal(signal.SIGALRM)
    try:
        for claimed in batch:
            signal.signal(signal.SIGALRM, _over_time(claimed["timeout"]))
            signal.alarm(max(1, int(claimed["timeout"])))
            try:
                outcomes.append(execute(claimed, take_over))
            finally:
                signal.alarm(0)
                KEEPER.release(claimed["id"])
    finally:
        signal.signal(signal.SIGALRM, previous)
        # Settled before the batch ends, so that nothing it adds outlives the batch.
        take_over.settle()
        KEEPER.release_all()
    return outcomes


class TakeOver:
    """A batch's take-over by this worker process, done on the lease keeper's thread."""

    def __init__(self, batch: list[dict]) -> None:
        self.entries = {c["id"]: (c["attempt"], lease_of(c["name"])) for c in batch}
        self.held: set[int] = set()
        self._done = threading.Event()

    def finish(self, held: set[int]) -> None:
        self.held = held
        self._done.set()

    def settle(self) -> bool:
        """Wait until the take-over is written; False when it is not within a lease."""
        return self._done.wait(settings.JOBS_LEASE_SECONDS)

    def lost(self, job_id: int, *, wait: bool) -> bool:
        """Whether the attempt is known not to be this process's; with ``wait``, know it first
        (an attempt whose take-over cannot be written within a lease counts as lost)."""
        if wait and not self.settle():
            return True
        return self._done.is_set() and job_id not in self.held


def lease_of(name: str) -> float:
    """Seconds of lease a job of task `name` holds while it waits or runs."""
    try:
        return task_named(name).lease_seconds
    except JobNotRegistered:
        return float(settings.JOBS_LEASE_SECONDS)


class LeaseKeeper:
    """Renews the leases of the attempts this process holds, every third of the shortest.

    One thread per process, started on first use (a forked worker starts its own), with its
    own database connection; while nothing is held it sleeps. ``holder`` None: a worker
    process, which takes attempts over by writing its name on them. Otherwise the claiming
    process's name: it renews only what still bears that name (what no worker took yet).
    """

    def __init__(self, holder: str | None = None) -> None:
        self.holder = holder
        self._pid = 0

    def _start(self) -> None:
        self._pid = os.getpid()
        self._held: dict[int, tuple[int, float]] = {}
        self._until: dict[int, float] = {}  # when the claimer gives an attempt up
        self._take_overs: list[TakeOver] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._period = 0.0
        threading.Thread(target=self._run, name="jobs-lease-keeper", daemon=True).start()

    def take_over(self, batch: list[dict]) -> TakeOver:
        """Have this process's name written on the batch's rows, on the keeper's thread (the
        caller goes on at once); :meth:`TakeOver.lost` tells which attempts it did not get."""
        if self._pid != os.getpid():
            self._start()
        request = TakeOver(batch)
        with self._lock:
            self._take_overs.append(request)
        self._wake.set()
        return request

    def _serve_take_overs(self) -> None:
        with self._lock:
            requests, self._take_overs = self._take_overs, []
        for request in requests:
            try:
                held = self._write_take_over(request.entries)
            except Exception:
                # Its attempts stay the claimer's (renewed for a while, then claimed again).
                logger.exception("could not take over a batch of %s jobs", len(request.entries))
                close_old_connections()
                held = set()
            request.finish(held)

    def _write_take_over(self, entries: dict[int, tuple[int, float]]) -> set[int]:
        """Write this process's name on the rows; the ids it now holds.

        Only the name (no indexed column: the row's new version can stay on its page): the
        claimer renewed the leases until now, so at least two thirds of one is left. Attempts
        of a task with a shorter lease (``heartbeat``) get theirs at once.
        """
        ids = list(entries)
        with connection.cursor() as cursor:
            cursor.execute(
                QUERIES["take_over"],
                {
                    "ids": ids,
                    "attempts": [entries[i][0] for i in ids],
                    "worker": _worker(),
                },
            )
            held = {row[0] for row in cursor.fetchall()}
        mine = {job_id: entries[job_id] for job_id in held}
        short = {k: v for k, v in mine.items() if v[1] < settings.JOBS_LEASE_SECONDS}
        if short:
            self._extend(short)
        self._add(mine)
        return held

    def hold(self, batch: list[dict]) -> None:
        """Keep renewing these claimed attempts while they bear the holder's name, for at most
        ``JOBS_BATCH_SECONDS``: a worker process that died between taking the batch from
        django-q2's queue and taking it over must not leave it held for ever."""
        until = time.monotonic() + settings.JOBS_BATCH_SECONDS
        self._add({c["id"]: (c["attempt"], lease_of(c["name"])) for c in batch}, until)

    def _add(self, entries: dict[int, tuple[int, float]], until: float | None = None) -> None:
        if self._pid != os.getpid():
            self._start()
        if not entries:
            return
        shortest = min(lease for _, lease in entries.values()) / 3
        with self._lock:
            idle = not self._held
            self._held.update(entries)
            if until is not None:
                self._until.update(dict.fromkeys(entries, until))
        if idle or shortest < self._period:
            self._wake.set()

    def release(self, job_id: int) -> None:
        if self._pid == os.getpid():
            with self._lock:
                self._held.pop(job_id, None)
                self._until.pop(job_id, None)

    def release_all(self) -> None:
        if self._pid == os.getpid():
            with self._lock:
                self._held.clear()
                self._until.clear()

    def _run(self) -> None:
        while True:
            self._serve_take_overs()
            with self._lock:
                held = dict(self._held)
            if not held:
                self._period = 0.0
                # Idle for a while: hold no connection (a test database must be droppable, a
                # server's connection budget is counted). A busy worker keeps it for the next
                # batch's take-over.
                if not self._wake.wait(KEEPER_IDLE_SECONDS):
                    connection.close()
                    self._wake.wait()
                self._wake.clear()
                continue
            self._period = min(lease for _, lease in held.values()) / 3
            if self._wake.wait(self._period):
                # A shorter lease arrived: renew on its schedule (still within the others').
                self._wake.clear()
                continue
            with self._lock:
                now = time.monotonic()
                for job_id in [k for k, until in self._until.items() if until <= now]:
                    self._held.pop(job_id, None)
                    self._until.pop(job_id, None)
                # Only what was held for the whole period: what ended meanwhile is done.
                held = {k: v for k, v in self._held.items() if k in held}
            if not held:
                continue
            try:
                kept = set(self._extend(held))
            except Exception:
                logger.exception("could not renew the leases of %s jobs", len(held))
                close_old_connections()
                continue
            if self.holder is not None:
                with self._lock:
                    for job_id in set(held) - kept:
                        self._held.pop(job_id, None)
                        self._until.pop(job_id, None)

    def _extend(self, entries: dict[int, tuple[int, float]]) -> list[int]:
        ids = list(entries)
        with connection.cursor() as cursor:
            cursor.execute(
                QUERIES["extend_leases"],
                {
                    "ids": ids,
                    "attempts": [entries[i][0] for i in ids],
                    "leases": [entries[i][1] for i in ids],
                    "now": timezone.now(),
                    "holder": self.holder,
                },
            )
            return [row[0] for row in cursor.fetchall()]


# How long an idle lease keeper keeps its database connection for the next batch.
KEEPER_IDLE_SECONDS = 1.0
KEEPER = LeaseKeeper()


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


def _record_outcome(job: Job, task: JobTask | None, outcome: str) -> None:
    """Hand an outcome the task function cannot write itself to its task (``on_outcome``)."""
    if task is not None and task.on_outcome is not None:
        task.on_outcome(job, outcome)


def _duration_ms(started: float) -> int:
    return max(0, int((time.monotonic() - started) * 1000))


def _succeed(run: Running, started: float, value: object = None) -> None:
    stored = _json_or_none(value)
    with prepared_cursor() as cursor:
        cursor.execute(
            QUERIES["succeed"],
            {
                "id": run.id,
                "attempt": run.attempt,
                "now": timezone.now(),
                "duration_ms": _duration_ms(started),
                "worker": _worker(),
                "return_value": None if stored is None else json.dumps(stored),
            },
        )
        if cursor.fetchone() is None:
            raise LostLease(f"job #{run.id} was taken over while attempt {run.attempt} ran")
    transaction.on_commit(lambda: JOB_ATTEMPTS.labels(run.name, "succeeded").inc())


def _fail(run: Running, task: JobTask | None, exc: BaseException, started: float) -> None:
    now = timezone.now()
    # Stored errors are shown in the admin: no secret may ride along in a message or traceback.
    error = redact(f"{exc.__class__.__name__}: {exc}")[:MAX_ERROR_CHARS]
    dead = task is None or isinstance(exc, PermanentError) or run.attempt >= run.max_attempts
    retry_at = None if dead else now + task.backoff_delay(run.attempt)
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
                "error_class": get_module_path(type(exc))[:200],
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
            _buried(job, task, error)
            return
    logger.warning("attempt %s failed, retry at %s: %s", run.attempt, retry_at.isoformat(), error)


def _bury_exhausted(run: Running, task: JobTask) -> None:
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
            _buried(job, task, error)


def _buried(job: Job, task: JobTask | None, error: str) -> None:
    """Inside the transaction that made `job` dead: its type's outcome now, alerts on commit."""
    _record_outcome(job, task, Job.Status.DEAD)
    JOBS_DEAD.labels(job.name).inc()
    transaction.on_commit(lambda: signals.job_dead.send(sender=job.name, job=job))
    tries = f"{job.attempts} attempt" if job.attempts == 1 else f"{job.attempts} attempts"
    logger.error("job #%s %s is dead after %s: %s", job.pk, job.name, tries, error)


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
        try:
            task = task_named(job.name)
        except JobNotRegistered:
            return ActionResult(False, f"no task named {job.name} any more")
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.QUEUED,
            run_at=timezone.now(),
            max_attempts=F("attempts") + task.max_attempts,
            finished_at=None,
        )
        job.refresh_from_db()
        _audit(job, JobAction.Kind.REPLAY, actor, before, forced=force, note=note)
        _record_outcome(job, task, JobAction.Kind.REPLAY)
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
        _record_outcome(job, _task_or_none(job.name), kind)
    return ActionResult(True)


def _task_or_none(name: str) -> JobTask | None:
    try:
        return task_named(name)
    except JobNotRegistered:
        return None  # a task since removed can still be settled


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
