"""The jobs layer's tables: jobs, the log of their attempts, and what staff did to them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Job(models.Model):
    """One unit of work of a declared job type, with its retry state.

    django-q2 carries the delivery (an OrmQ row per attempt); this row is the truth about the
    job: how many attempts it had, when the next is due, and whether it is done or dead.
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

    name = models.CharField(max_length=100, help_text="The job type, e.g. billing.process_event.")
    kwargs = models.JSONField(default=dict, blank=True)
    target = models.CharField(
        max_length=200, blank=True, help_text="What the job is about, e.g. billing.stripeevent:42."
    )
    queue = models.CharField(max_length=50, default="default")
    unique_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    run_at = models.DateTimeField(help_text="When the next attempt is due.")
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="A running attempt not finished by then has crashed."
    )
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("replay_job", "Can replay, resolve or discard jobs")]
        constraints = [
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
            models.CheckConstraint(
                name="job_running_has_lease",
                condition=~Q(status="running") | Q(lease_expires_at__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["status", "name"], name="job_status_name"),
            models.Index(fields=["target"], name="job_target"),
            models.Index(fields=["created_at"], name="job_created"),
            models.Index(
                fields=["run_at"],
                name="job_waiting_due",
                condition=Q(status__in=["queued", "retrying"]),
            ),
            models.Index(
                fields=["name", "finished_at"], name="job_dead_by_name", condition=Q(status="dead")
            ),
        ]

    def __str__(self) -> str:
        about = f" ({self.target})" if self.target else ""
        return f"{self.name} #{self.pk}{about}: {self.get_status_display()}"


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

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
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


class AlertWindow(models.Model):
    """Rate limit for dead-job alerts: the first death in a window alerts at once, the rest are
    summed up in one message when the window ends."""

    key = models.CharField(max_length=50, unique=True)
    started_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    first_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return f"{self.key}: {self.started_at:%H:%M}-{self.ends_at:%H:%M}"
