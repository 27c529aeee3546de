"""Prebookings (a booking sent at the instant a class opens) and the bundled demo gym's tables."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
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
    def label(self) -> str:
        """The class as people name it: "WOD · 18:00 - 19:00" at AimHarder, else its id."""
        if self.payload.get("class_name"):
            return f"{self.payload['class_name']} · {self.payload.get('class_time', '')}".strip()
        return str(self.payload.get("class_id", ""))

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

    OUTCOME_WORDS = {
        "booked": "Booked: your place is kept.",
        "already_booked": "Booked (you already had this class).",
        "waitlisted": "On the waiting list: the class was full.",
    }

    @property
    def outcome_words(self) -> str:
        """What happened at the gym, in a sentence for the member."""
        if self.status == self.Status.PENDING:
            return "Waiting for booking to open."
        if self.status == self.Status.FIRING:
            return "Booking now..."
        kind = (self.response or {}).get("kind", "")
        if self.status == self.Status.SUCCEEDED:
            return self.OUTCOME_WORDS.get(kind, "Booked.")
        if kind in self.OUTCOME_WORDS:
            return self.OUTCOME_WORDS[kind]
        return self.error or self.get_status_display()

    @property
    def arrival_lateness_ms(self) -> float | None:
        """When the request reached the gym after opening, by the gym's clock (estimated)."""
        arrives = ((self.response or {}).get("timing") or {}).get("arrives_at")
        if arrives is None:
            return None
        return (arrives - self.opens_at.timestamp()) * 1000

    @property
    def gym_cancellation(self):
        """The AimHarderCancellation of this prebooking's booking, or None."""
        try:
            return self.aimhardercancellation
        except models.ObjectDoesNotExist:
            return None


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


class AimHarderAccount(models.Model):
    """A member's linked AimHarder account; the password is stored only as a Fernet token."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="aimharder_accounts"
    )
    email = models.EmailField()
    # Fernet token (prebooking.providers.credentials) of the password: never the password itself.
    password_token = models.TextField(editable=False)
    # The device id AimHarder sees: stable per account, so each login is not a new device.
    fingerprint = models.CharField(max_length=50, editable=False)
    member_id = models.CharField(max_length=40, blank=True, default="")
    name = models.CharField(max_length=150, blank=True, default="")
    linked_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "email"], name="aimharder_account_once"),
            models.CheckConstraint(
                condition=~Q(password_token=""), name="aimharder_account_has_secret"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.owner})"


# A box's slug is the first label of its host name (<slug>.aimharder.com), formatted into every
# URL we call for it: nothing else may get in, whoever supplies it (AimHarder, a form, a command).
BOX_SLUG_PATTERN = r"^[a-z0-9-]+$"
box_slug_validator = RegexValidator(
    BOX_SLUG_PATTERN, "A box slug is lowercase letters, digits and hyphens only."
)


class AimHarderBox(models.Model):
    """A box the linked account belongs to, with the member's rule for when booking opens.

    The rule is either "N hours before the class" or "D days before, at HH:MM", in the box's
    time zone (AimHarder boxes use Madrid wall-clock time).
    """

    class Rule(models.TextChoices):
        HOURS_BEFORE = "hours_before", "N hours before the class"
        DAYS_BEFORE_AT = "days_before_at", "D days before, at HH:MM"

    account = models.ForeignKey(AimHarderAccount, on_delete=models.CASCADE, related_name="boxes")
    boid = models.CharField(max_length=20, help_text="AimHarder's box id.")
    slug = models.CharField(
        max_length=80,
        validators=[box_slug_validator],
        help_text="The box's host name: <slug>.aimharder.com",
    )
    name = models.CharField(max_length=150, blank=True, default="")
    rule = models.CharField(max_length=20, choices=Rule.choices, default=Rule.HOURS_BEFORE)
    hours_before = models.PositiveIntegerField(null=True, blank=True, default=72)
    days_before = models.PositiveSmallIntegerField(null=True, blank=True)
    at_time = models.TimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="Europe/Madrid")

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "boid"], name="aimharder_box_once"),
            models.CheckConstraint(
                condition=(
                    Q(rule="hours_before", hours_before__isnull=False)
                    | Q(rule="days_before_at", days_before__isnull=False, at_time__isnull=False)
                ),
                name="aimharder_box_rule_complete",
            ),
            models.CheckConstraint(
                condition=Q(slug__regex=BOX_SLUG_PATTERN), name="aimharder_box_slug_host_label"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.slug} ({self.account.email})"


class AimHarderCancellation(models.Model):
    """A booking made by a prebooking and later cancelled at the gym (once: one row)."""

    prebooking = models.OneToOneField(Prebooking, on_delete=models.CASCADE)
    cancelled_at = models.DateTimeField()
    late = models.BooleanField(default=False, help_text="Confirmed despite losing the credit.")

    def __str__(self) -> str:
        return f"booking of prebooking #{self.prebooking_id} cancelled"


class ClockEstimate(models.Model):
    """The latest clock and delay estimate of a provider host (prebooking/providers/clock.py).

    shift = (the host's clock when it stamps a request) - (our clock when we sent it), which is
    what sending at the host's instant needs; offset = shift - rtt / 2.
    """

    host = models.CharField(max_length=255, unique=True)
    offset_ms = models.FloatField()
    rtt_ms = models.FloatField()
    shift_ms = models.FloatField()
    uncertainty_ms = models.FloatField()
    probes = models.PositiveIntegerField()
    measured_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.host}: offset {self.offset_ms:+.1f} ms, rtt {self.rtt_ms:.1f} ms"
