"""Request and job ids in every log line.

A context variable holds the id of whatever is running (an HTTP request or a job attempt);
the logging filter puts it on each record, the middleware sets it per request and answers it
back in `X-Request-ID`.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.http import HttpRequest, HttpResponse

current_context: contextvars.ContextVar[str] = contextvars.ContextVar("log_context", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.context = current_context.get()
        return True


@contextmanager
def log_context(value: str) -> Iterator[None]:
    """Tag every log line written inside the block with `value` (e.g. ``job=42``)."""
    token = current_context.set(value)
    try:
        yield
    finally:
        current_context.reset(token)


class RequestIdMiddleware:
    """Give each request an id (the caller's `X-Request-ID` when it is sane) for the logs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex[:16]
        request.request_id = request_id
        with log_context(f"req={request_id}"):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
