"""Accounts' own tables: sign-ups waiting for their address to be proved, and rate-limit
counters kept in PostgreSQL so that every worker and machine counts together."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class PendingSignup(models.Model):
    """A sign-up whose address is not proved yet. No account exists until it is.

    Each sign-up is its own row with its own activation link, and reserves neither the address
    nor the user name: whoever opens their own link first gets the account they asked for,
    with the password they chose, and the other sign-ups for that address die with it.
    """

    username = models.CharField(max_length=150)
    email = models.EmailField(max_length=254, db_index=True, help_text="Case-folded, trimmed.")
    password = models.CharField(max_length=128, help_text="The hash, as User.password holds it.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "accounts_pending_signup"

    def __str__(self) -> str:
        return f"{self.username} <{self.email}> (not activated)"


class RateLimitCounter(models.Model):
    """One django-ratelimit window for one client: how many requests so far, and until when."""

    key = models.CharField(max_length=250, primary_key=True)
    count = models.BigIntegerField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "rate_limit_counter"

    def __str__(self) -> str:
        return f"{self.key}: {self.count} until {self.expires_at.isoformat()}"
