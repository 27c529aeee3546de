"""Template tags for what a user's plan allows, for pages outside billing."""

from __future__ import annotations

from django import template

from billing.entitlements import pending_prebooking_limit

register = template.Library()


@register.simple_tag
def pending_limit(user) -> int:
    """{% pending_limit user as limit %}: how many pending prebookings the user may hold."""
    return pending_prebooking_limit(user.pk)
