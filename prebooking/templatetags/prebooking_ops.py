"""Template tags for the operations dashboard: the gym hosts' clock offsets."""

from __future__ import annotations

from django import template

from prebooking.models import ClockEstimate

register = template.Library()


@register.inclusion_tag("prebooking/gym_clocks.html")
def gym_clocks(limit: int = 20) -> dict:
    """The latest clock estimate of each gym host (arrival targeting), newest first."""
    return {"clocks": list(ClockEstimate.objects.order_by("-measured_at")[:limit])}
