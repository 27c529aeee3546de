"""Mail kept instead of sent: what a developer opens to click an activation link."""

from __future__ import annotations

from django.db import models


class OutboxMail(models.Model):
    """One message as the outbox backend received it (development only)."""

    created_at = models.DateTimeField(auto_now_add=True)
    from_email = models.CharField(max_length=320)
    to = models.TextField(help_text="Recipients (to, cc, bcc), one a line.")
    subject = models.CharField(max_length=998)
    text = models.TextField(blank=True, default="")
    html = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "mail in the outbox"
        verbose_name_plural = "outbox (mail sent in development)"

    def __str__(self) -> str:
        return f"{self.subject} to {self.to.replace(chr(10), ', ')}"
