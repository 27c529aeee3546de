"""The e-mail queue: one row per e-mail, which is also its at-most-once guard."""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class Email(models.Model):
    """One email to send, once: `key` is (cause, template), unique, written with its cause.

    The send job moves it pending -> sending (committed) -> sent, so a worker that dies while
    sending leaves it `sending`, which is never retried automatically: at most once. The table
    keeps the name it had when billing alone sent e-mail.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SENDING = "sending", "sending (outcome unknown if it stays)"
        SENT = "sent", "sent"
        SKIPPED = "skipped", "skipped (no longer relevant)"

    key = models.CharField(max_length=255, help_text="<cause>:<template>, unique.")
    template = models.CharField(max_length=64)
    to = models.EmailField(blank=True, default="", help_text="Empty: the customer's address.")
    # A Stripe customer's address may arrive after the e-mail is queued: read it at send time.
    customer = models.ForeignKey(
        "billing.Customer",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="emails",
    )
    context = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    message_id = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "billing_email"
        constraints = [models.UniqueConstraint(fields=["key"], name="billing_email_key_unique")]

    def __str__(self) -> str:
        return f"{self.template} to {self.to or self.customer} ({self.status})"
