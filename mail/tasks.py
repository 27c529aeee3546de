"""What workers run for mail: sending one queued e-mail."""

from __future__ import annotations

from django_tasks import task

from jobs.backend import Backoff
from mail import services


@task(
    # Most failures are a recipient not known yet (its customer.created is in flight) or a
    # brief ESP outage: retry sooner than event processing does.
    max_attempts=8,
    backoff=Backoff(base=20, factor=3, cap=3600),
    timeout=30,
    atomic=False,  # "sending" must commit before the ESP call: at most once
)
def send(email_id: int) -> None:
    """Send one queued email (mail.services.send)."""
    services.send(email_id)
