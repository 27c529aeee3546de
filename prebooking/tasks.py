"""What workers run for prebookings: the timing cluster's django-q2 tasks (arming, firing,
recovery) and the failure e-mail, a job of the jobs layer on the default queue."""

from __future__ import annotations

from jobs import job
from prebooking import firing, services


@job("prebooking.notify_failure", max_attempts=5, backoff_base=60, queue="default")
def notify_failure(prebooking_id: int) -> None:
    """Tell the owner that the booking did not happen; retried on its own if the mail fails."""
    services.notify_failure(prebooking_id)


def arm(prebooking_id: int = 0) -> int:
    """Arm everything opening within the lead time (the id only says which schedule ran)."""
    return firing.arm()


def refire(prebooking_id: int) -> bool:
    """Send again a prebooking that the sweep found firing with a dead worker."""
    return firing.fire_now(prebooking_id, claim=False)


def sweep() -> dict[str, int]:
    """Periodic recovery (a django-q2 schedule on the timing cluster, every minute)."""
    return services.sweep()
