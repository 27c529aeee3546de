"""The jobs layer's tables: jobs, the log of their attempts, and what staff did to them."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Upper


class Job(models.Model):
    """One unit of work of a ``@task``: its queue entry, its state and its retry state.

    There is no other delivery record: workers claim these rows (jobs/sql/queries.sql). For a
    waiting job ``run_at`` is when it is due; for a running one it is its lease, the moment
    the attempt counts as crashed and the job may be claimed again.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        RETRYING = "retrying", "Failed, will retry"
        SUCCEEDED = "succeeded", "Succeeded"
        DEAD = "dead", "Dead"
        RESOLVED = "resolved", "Resolved by staff"
        DISCARDED = "discarded", "Discarded by staff"

    WAITING = (Status.QUEUED, Status.RETRYING)
    FINAL = (Status.SUCCEEDED, Status.RESOLVED, Status.DISCARDED)

    name = models.CharField(
        max_length=200, help_text="Its task's module path, e.g. billing.tasks.process_event."
    )
    args = models.JSONField(default=list, blank=True, db_default=Value([], models.JSONField()))
    kwargs = models.JSONField(default=dict, blank=True)
    target = models.CharField(
        max_length=200, blank=True, help_text="What the job is about, e.g. billing.stripeevent:42."
    )
    queue = models.CharField(max_length=50, default="default")
    # Unique through Meta.constraints: a unique=True CharField also gets a LIKE index on
    # PostgreSQL, one more index to update on every claim and finish.
    unique_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - NULL: no key
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    run_at = models.DateTimeField(
        help_text="Waiting: when the next attempt is due. Running: its lease, after which the "
        "attempt counts as crashed."
    )
    timeout = models.PositiveIntegerField(
        default=60, help_text="Seconds an attempt may run; its lease is this plus a margin."
    )
    worker = models.CharField(
        max_length=100, blank=True, help_text="Who holds the attempt (claimer, then worker)."
    )
    last_error = models.TextField(blank=True)
    # What the task returned when it succeeded, if JSON could hold it (TaskResult.return_value).
    return_value = models.JSONField(null=True, blank=True)
    # db_default: the enqueue statement (jobs_enqueue) lists its columns and leaves this out.
    error_fingerprint = models.CharField(
        max_length=200,
        blank=True,
        db_default="",
        help_text="The last error's type and message with ids and numbers masked: its group.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("replay_job", "Can replay, resolve or discard jobs")]
        constraints = [
            # Partial: most jobs have no key, and a NULL would still be an index entry.
            models.UniqueConstraint(
                fields=["unique_key"],
                name="job_unique_key",
                condition=Q(unique_key__isnull=False),
            ),
            models.CheckConstraint(
                name="job_status_valid",
                condition=Q(
                    status__in=[
                        "queued",
                        "running",
                        "retrying",
                        "succeeded",
                        "dead",
                        "resolved",
                        "discarded",
                    ]
                ),
            ),
            models.CheckConstraint(
                name="job_max_attempts_positive", condition=Q(max_attempts__gt=0)
            ),
        ]
        # Every claim and finish changes indexed columns (status, run_at), so each index here
        # gets a new entry per state change: partial indexes where a query needs only a few
        # states, and nothing a hot query does not use.
        indexes = [
            models.Index(fields=["target"], name="job_target"),
            # Waiting jobs by key prefix (billing.dunning settles a case's waiting steps).
            models.Index(
                fields=["unique_key"],
                name="job_waiting_key",
                opclasses=["varchar_pattern_ops"],
                condition=Q(status__in=["queued", "retrying"], unique_key__isnull=False),
            ),
            models.Index(
                fields=["finished_at"],
                name="job_settled_finished",
                condition=Q(status__in=["succeeded", "resolved", "discarded"]),
            ),
            # The queue: claims, the earliest run_at ahead, readiness (jobs/sql/queries.sql):
            # waiting jobs by due time, running ones by lease end (a row is in one of the two).
            models.Index(
                fields=["queue", "run_at", "id"],
                name="job_claimable",
                condition=Q(status__in=["queued", "retrying"]),
            ),
            models.Index(
                fields=["queue", "run_at"], name="job_leases", condition=Q(status="running")
            ),
            models.Index(
                fields=["name", "finished_at"], name="job_dead_by_name", condition=Q(status="dead")
            ),
            # The dead letters grouped by error, and the list of one group.
            models.Index(
                fields=["error_fingerprint", "name"],
                name="job_dead_by_fingerprint",
                condition=Q(status="dead"),
            ),
            # The console's search for error text: a case-insensitive substring (icontains is
            # UPPER(last_error) LIKE UPPER(...)), only over jobs that have an error.
            GinIndex(
                OpClass(Upper("last_error"), name="gin_trgm_ops"),
                name="job_error_trgm",
                condition=~Q(last_error=""),
            ),
        ]

    def __str__(self) -> str:
        about = f" ({self.target})" if self.target else ""
        return f"{self.name} #{self.pk}{about}: {self.get_status_display()}"

    @property
    def lease_expires_at(self):
        """When a running attempt counts as crashed (None unless running)."""
        return self.run_at if self.status == self.Status.RUNNING else None


class DeadLetter(Job):
    """Dead jobs of every type, for the admin's one "Dead letters" entry."""

    class Meta:
        proxy = True
        verbose_name = "dead letter"


class JobAttempt(models.Model):
    """The execution log: one row per attempt, what staff read to learn why a job failed."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CRASHED = "crashed", "Worker died"

    # No index of its own: jobattempt_once_per_number (job, number) serves lookups by job.
    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="attempt_log", db_index=False
    )
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The exception's class path (TaskResult.errors); a crash's is jobs.errors.WorkerDied.
    error_class = models.CharField(max_length=200, blank=True, db_default="")
    traceback = models.TextField(blank=True)
    worker = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="jobattempt_once_per_number"),
        ]
        indexes = [models.Index(fields=["outcome", "started_at"], name="jobattempt_outcome")]

    def __str__(self) -> str:
        return f"attempt {self.number} of job #{self.job_id}: {self.get_outcome_display()}"


class JobAction(models.Model):
    """Audit of what staff (or a command) did to a job: replay, resolve, discard."""

    class Kind(models.TextChoices):
        REPLAY = "replay", "Replay"
        RESOLVE = "resolve", "Mark resolved"
        DISCARD = "discard", "Discard"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="actions")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="Kept if the user goes.")
    at = models.DateTimeField(auto_now_add=True)
    forced = models.BooleanField(default=False)
    status_before = models.CharField(max_length=20)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of job #{self.job_id} by {self.actor_name or 'system'}"


class BulkAction(models.Model):
    """Audit of one console action over every row a filter matched ("Replay all matching").

    Each row it acted on gets its own JobAction (or its app's own audit) as well, whose note
    names this one.
    """

    kind = models.CharField(max_length=30)
    model = models.CharField(max_length=100, help_text="The list it ran on, e.g. jobs.deadletter.")
    filter = models.TextField(help_text="The list's filter and search, as its query string.")
    matched = models.PositiveIntegerField(
        help_text="Rows the filter matched, counted no further than the cap + 1."
    )
    acted = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="Kept if the user goes.")
    at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} of {self.acted} {self.model} by {self.actor_name or 'system'}"


class AlertWindow(models.Model):
    """Rate limit for dead-job alerts: the first death in a window alerts at once, the rest are
    summed up in one message when the window ends."""

    key = models.CharField(max_length=50, unique=True)
    started_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    first_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return f"{self.key}: {self.started_at:%H:%M}-{self.ends_at:%H:%M}"


class WorkerCluster(models.Model):
    """A running worker cluster (one ``manage.py jobs_worker``), as its heartbeat last said.

    Written by the cluster's broker about once a second while it claims work; /readyz and the
    dashboard read it. Rows of clusters gone for a day are pruned.
    """

    name = models.CharField(max_length=100)
    queue = models.CharField(max_length=50)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    workers = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["host", "pid"], name="workercluster_one_per_process")
        ]
        indexes = [models.Index(fields=["queue", "seen_at"], name="workercluster_queue_seen")]

    def __str__(self) -> str:
        return f"{self.name} ({self.queue}) on {self.host}:{self.pid}"
