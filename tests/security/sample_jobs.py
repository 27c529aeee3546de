"""A task that fails with secrets in its error, for the redaction tests."""

from __future__ import annotations

from django.conf import settings
from django_tasks import task


@task(max_attempts=1)
def leaks_secret(key: str) -> None:
    raise RuntimeError(f"Stripe said no to {key}; webhook secret {settings.STRIPE_WEBHOOK_SECRET}")
