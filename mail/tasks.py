"""What workers run for mail: sending one queued e-mail."""

from __future__ import annotations

from jobs import job
from mail import services


@job(
    services.SEND_JOB,
    # Most failures are a recipient not known yet (its customer.created is in flight) or a
    # brief ESP outage: retry sooner than event processing does.
    max_attempts=8,
    backoff_base=20,
    backoff_factor=3,
    backoff_cap=3600,
    timeout=30,
    queue="default",
    atomic=False,  # "sending" must commit before the ESP call: at most once
)
def send(email_id: int) -> None:
    """Send one queued email (mail.services.send)."""
    services.send(email_id)
