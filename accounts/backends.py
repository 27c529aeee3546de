"""django-axes' lockout backend, tolerant of authenticate() calls made without a request."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LockoutBackend(AxesStandaloneBackend):
    """Refuse locked-out clients; step aside when there is no request to judge.

    Every HTTP login path (our login page, the admin's) passes the request, so it is throttled.
    Only in-process callers (a shell, the test client's ``login()``) call without one: axes would
    raise for them, and there is no client to lock out, so we leave them to ModelBackend.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
