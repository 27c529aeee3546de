"""Rate-limit counters, kept in PostgreSQL so that every worker and machine counts together."""

from __future__ import annotations

from django.db import models


class RateLimitCounter(models.Model):
    """One django-ratelimit window for one client: how many requests so far, and until when."""

    key = models.CharField(max_length=250, primary_key=True)
    count = models.BigIntegerField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "rate_limit_counter"

    def __str__(self) -> str:
        return f"{self.key}: {self.count} until {self.expires_at.isoformat()}"
