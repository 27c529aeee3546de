"""What the timing cluster's workers run (django-q2 task functions; arguments are ids)."""

from __future__ import annotations

from prebooking import firing, services


def arm(prebooking_id: int = 0) -> int:
    """Arm everything opening within the lead time (the id only says which schedule ran)."""
    return firing.arm()


def refire(prebooking_id: int) -> bool:
    """Send again a prebooking that the sweep found firing with a dead worker."""
    return firing.fire_now(prebooking_id, claim=False)


def sweep() -> dict[str, int]:
    """Periodic recovery (a django-q2 schedule on the timing cluster, every minute)."""
    return services.sweep()
