"""A per-account ceiling on failed log-ins from anywhere: past it, guessing is slowed, and the
owner's own browsers are not.

django-axes locks an (account, address) pair after a few failures, and LOGIN_IP_RATE bounds
each address; an attacker with many addresses gets a few guesses from each. This counts the
account's failures from every address (LOGIN_ACCOUNT_FAILURE_RATE, e.g. 50 an hour). Past that
the account is not locked, which would hand its owner's access to whoever guesses wrong
often enough: log-in attempts for it from browsers it never signed in from are let through
at LOGIN_ACCOUNT_SLOW_RATE (e.g. 2 a minute, for all of them together), and a browser that
signed in to it before (a signed "known device" cookie) is not slowed at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_ratelimit.core import get_usage

logger = logging.getLogger(__name__)

DEVICE_COOKIE = "known_device"
DEVICE_SALT = "accounts.ceiling.known_device"
DEVICE_MAX_AGE = timedelta(days=180)


def account_key(group: str, request: HttpRequest) -> str:
    """The account a log-in names, as one (trimmed, case-folded)."""
    return request.POST.get("username", "").strip().casefold()


def _usage(request: HttpRequest, group: str, rate_setting: str, increment: bool) -> dict | None:
    return get_usage(
        request,
        group=group,
        key=account_key,
        rate=getattr(settings, rate_setting),
        method="POST",
        increment=increment,
    )


def count_failure(sender: Any, credentials: dict, request: HttpRequest | None = None, **_) -> None:
    """user_login_failed: one more failure for the account named, from whatever address."""
    if request is not None and request.method == "POST":
        _usage(request, "login-account-failures", "LOGIN_ACCOUNT_FAILURE_RATE", increment=True)


def known_device(request: HttpRequest) -> bool:
    """Whether this browser signed in to the account it names before."""
    value = request.get_signed_cookie(
        DEVICE_COOKIE, default=None, salt=DEVICE_SALT, max_age=DEVICE_MAX_AGE
    )
    return value is not None and value == account_key("", request)


def limited(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Apply the ceiling to a log-in view, and mark the browser known after a success."""

    @wraps(view)
    def ceiling_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST" or not account_key("", request):
            return view(request, *args, **kwargs)
        failures = _usage(request, "login-account-failures", "LOGIN_ACCOUNT_FAILURE_RATE", False)
        over = bool(failures and failures["count"] >= failures["limit"])
        if over and not known_device(request):
            slow = _usage(request, "login-account-slow", "LOGIN_ACCOUNT_SLOW_RATE", True)
            if slow and slow["should_limit"]:
                logger.warning("log-in ceiling: account slowed, attempt refused")
                context = {"rate": settings.LOGIN_ACCOUNT_SLOW_RATE, "wait": slow["time_left"]}
                return render(request, "registration/account_slowed.html", context, status=429)
        response = view(request, *args, **kwargs)
        if request.user.is_authenticated:
            response.set_signed_cookie(
                DEVICE_COOKIE,
                account_key("", request),
                salt=DEVICE_SALT,
                max_age=int(DEVICE_MAX_AGE.total_seconds()),
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response

    return ceiling_view
