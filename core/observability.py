"""Request and job ids in every log line, and request metrics for /metrics.

A context variable holds the id of whatever is running (an HTTP request or a job attempt);
the logging filter puts it on each record, the middleware sets it per request and answers it
back in `X-Request-ID`.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Histogram

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


HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests by route and status", ["route", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from the request reaching Django to the response, by route",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class RequestIdMiddleware:
    """Give each request an id (the caller's `X-Request-ID` when it is sane) for the logs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex[:16]
        request.request_id = request_id
        started = time.perf_counter()
        with log_context(f"req={request_id}"):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        # Label by route name, never by raw path: paths are unbounded, route names are not.
        match = request.resolver_match
        route = (match.view_name if match else "") or "unmatched"
        HTTP_REQUESTS.labels(route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(route).observe(time.perf_counter() - started)
        return response
