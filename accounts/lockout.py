"""The answer to a locked (account, address) pair: how long it lasts, on the right site's page.

django-axes calls `lockout_response` (AXES_LOCKOUT_CALLABLE) for a login refused because the
pair failed AXES_FAILURE_LIMIT times. The admin's login gets an admin-styled page; ours, the
public one. Both say when the lock lifts: attempts during it do not extend it.
"""

from __future__ import annotations

import math

from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone


def lock_minutes_left(request: HttpRequest, username: str) -> int:
    """Whole minutes (rounded up) until the lock of this username at this address lifts."""
    cool_off = get_cool_off(request)
    last = (
        AccessAttempt.objects.filter(
            username=username, ip_address=getattr(request, "axes_ip_address", None)
        )
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    if cool_off is None:
        return 0
    left = cool_off if last is None else last + cool_off - timezone.now()
    return max(1, math.ceil(left.total_seconds() / 60))


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """The 429 page for a locked (account, address) pair."""
    username = get_client_username(request, credentials) or ""
    admin_login = request.path.startswith(reverse("admin:index"))
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "username": username,
        "minutes_left": lock_minutes_left(request, username),
        "title": "Too many failed log-ins",
    }
    template = "admin/locked_out.html" if admin_login else "registration/locked_out.html"
    return render(request, template, context, status=429)
