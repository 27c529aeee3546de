"""Prebookings (a booking sent at the instant a class opens) and the bundled demo gym's tables."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Prebooking(models.Model):
    """One booking request a user asked us to send at `opens_at`."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        FIRING = "firing", "Firing"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="prebookings"
    )
    provider = models.CharField(max_length=40)
    payload = models.JSONField(help_text="What the provider's booking endpoint receives.")
    opens_at = models.DateTimeField(help_text="When booking opens: the instant we fire.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    armed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a timing worker took it to fire on time."
    )
    fired_at = models.DateTimeField(
        null=True, blank=True, help_text="When the request left for the provider."
    )
    attempted_at = models.DateTimeField(
        null=True, blank=True, help_text="Latest attempt; recovery reads it to spot dead workers."
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    lateness_ms = models.FloatField(null=True, blank=True, help_text="fired_at - opens_at")
    attempts = models.PositiveSmallIntegerField(default=0)
    response = models.JSONField(null=True, blank=True, help_text="The provider's answer.")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-opens_at", "-id"]
        indexes = [
            # What the armer and the sweep scan: pending rows by opening time.
            models.Index(
                fields=["opens_at", "created_at", "id"],
                condition=Q(status="pending"),
                name="prebooking_pending_opens",
            ),
            models.Index(
                fields=["attempted_at"], condition=Q(status="firing"), name="prebooking_firing"
            ),
            models.Index(fields=["owner", "status"], name="prebooking_owner_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=["pending", "firing", "succeeded", "failed", "cancelled", "expired"]
                ),
                name="prebooking_status_valid",
            ),
            # fired_at is set exactly when a request was (or may have been) sent.
            models.CheckConstraint(
                condition=(
                    Q(status__in=["pending", "cancelled", "expired"], fired_at__isnull=True)
                    | Q(status__in=["firing", "succeeded", "failed"], fired_at__isnull=False)
                ),
                name="prebooking_fired_at_iff_fired",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status__in=["pending", "firing"], finished_at__isnull=True)
                    | Q(
                        status__in=["succeeded", "failed", "cancelled", "expired"],
                        finished_at__isnull=False,
                    )
                ),
                name="prebooking_finished_at_iff_final",
            ),
            models.CheckConstraint(
                condition=Q(fired_at__isnull=True, lateness_ms__isnull=True)
                | Q(fired_at__isnull=False, lateness_ms__isnull=False),
                name="prebooking_lateness_with_fired_at",
            ),
            models.CheckConstraint(
                condition=Q(fired_at__isnull=True) | Q(attempts__gte=1),
                name="prebooking_fired_has_attempt",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["failed", "expired"]) | ~Q(error=""),
                name="prebooking_failure_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"#{self.pk} {self.payload.get('class_id', '?')} at {self.opens_at:%Y-%m-%d %H:%M:%S}"
        )

    @property
    def answer_summary(self) -> str:
        """The provider's answer in a word or two, for lists."""
        if not self.response:
            return self.error
        answer = self.response.get("answer") or {}
        return str(answer.get("status") or answer.get("error") or self.response.get("reason", ""))

    @property
    def is_final(self) -> bool:
        return self.status not in {self.Status.PENDING, self.Status.FIRING}


class DemoGymClass(models.Model):
    """A class at the bundled demo gym: opens for booking at `opens_at`, holds `capacity`."""

    class_id = models.CharField(max_length=80, unique=True)
    name = models.CharField(max_length=120, blank=True, default="")
    starts_at = models.DateTimeField(null=True, blank=True)
    opens_at = models.DateTimeField()
    capacity = models.PositiveIntegerField(default=20)
    # Test and fault hook: answer 503 to this many requests before serving normally.
    fail_next = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "demo gym class"
        verbose_name_plural = "demo gym classes"

    def __str__(self) -> str:
        return f"{self.class_id} (opens {self.opens_at:%Y-%m-%d %H:%M:%S}, {self.capacity} places)"


class DemoGymBooking(models.Model):
    """A place the demo gym gave away."""

    gym_class = models.ForeignKey(DemoGymClass, on_delete=models.CASCADE)
    member = models.CharField(max_length=150)
    request_key = models.CharField(max_length=80)
    booked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["gym_class", "member"], name="demogym_one_place_each"),
        ]

    def __str__(self) -> str:
        return f"{self.member} in {self.gym_class.class_id}"


class DemoGymRequest(models.Model):
    """Every booking request the demo gym received, with its arrival time to the microsecond."""

    class_id = models.CharField(max_length=80)
    member = models.CharField(max_length=150, blank=True, default="")
    request_key = models.CharField(max_length=80, blank=True, default="")
    # Kernel receive timestamp of the request's first byte (SO_TIMESTAMPNS), so the gym's own
    # thread scheduling does not count as our lateness.
    arrived_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField()
    answer = models.CharField(max_length=40)

    class Meta:
        indexes = [models.Index(fields=["class_id", "arrived_at"], name="demogym_req_class")]

    def __str__(self) -> str:
        return f"{self.class_id} {self.member} {self.arrived_at:%H:%M:%S.%f} {self.status_code}"
