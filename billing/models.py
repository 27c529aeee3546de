"""Billing state mirrored from Stripe: the event log and the objects its handlers maintain."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class StripeEvent(models.Model):
    """One Stripe event as delivered (webhook or backfill), stored once, processed by a job."""

    class Status(models.TextChoices):
        RECEIVED = "received", "received"
        PROCESSING = "processing", "processing"
        PROCESSED = "processed", "processed"
        FAILED = "failed", "failed (will retry)"
        DEAD = "dead", "dead (attempts exhausted)"
        IGNORED = "ignored", "ignored (no handler)"

    UNPROCESSED = (Status.RECEIVED, Status.PROCESSING, Status.FAILED)

    stripe_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    api_version = models.CharField(max_length=64, blank=True, default="")
    livemode = models.BooleanField(default=False)
    created = models.DateTimeField(help_text="Stripe's creation time of the event.")
    payload = models.JSONField(help_text="The whole event as Stripe sent it.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stripe_id"], name="billing_event_stripe_id_unique"),
            models.CheckConstraint(
                condition=Q(
                    status__in=["received", "processing", "processed", "failed", "dead", "ignored"]
                ),
                name="billing_event_status_valid",
            ),
        ]
        indexes = [
            # Admin filters, each sorted newest first as the changelist shows them.
            models.Index(fields=["status", "-received_at"], name="billing_event_status_idx"),
            models.Index(fields=["type", "-received_at"], name="billing_event_type_idx"),
            models.Index(fields=["-received_at"], name="billing_event_received_idx"),
            # "Oldest unprocessed": small, because processed rows (almost all) are not in it.
            models.Index(
                fields=["received_at"],
                condition=Q(status__in=["received", "processing", "failed"]),
                name="billing_event_unprocessed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id} ({self.status})"


class Customer(models.Model):
    """A Stripe customer, linked to the user who owns it once a checkout tells us who that is."""

    stripe_id = models.CharField(max_length=255)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="billing_customer",
    )
    email = models.EmailField(blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    deleted = models.BooleanField(default=False)
    # Order safety: Stripe's `created` of the newest event applied to this row.
    stripe_event_created = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stripe_id"], name="billing_customer_stripe_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.email or '(no email yet)'} {self.stripe_id}"


class ActivityLog(models.Model):
    """Audit trail: one row per change a Stripe event made to a customer's billing state."""

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="activity"
    )
    stripe_event_id = models.CharField(max_length=255, help_text="The event that made the change.")
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=255)
    action = models.CharField(max_length=100)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="billing_activity_customer_idx"),
            models.Index(fields=["stripe_event_id"], name="billing_activity_event_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} {self.object_id} by {self.stripe_event_id}"
