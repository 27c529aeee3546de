"""Project-wide endpoints: liveness, and the favicon browsers ask for."""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def database_answers(*, log_failure: bool = True) -> str | None:
    """None when the database answers a trivial query, else the reason it does not.

    /readyz passes ``log_failure=False``: it logs a change of readiness once, not each probe.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        if log_failure:
            logger.warning("database check failed: %s", exc)
        return f"database unavailable: {exc.__class__.__name__}"
    return None


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process serves requests and reaches its database. Cheap: one SELECT 1."""
    problem = database_answers()
    if problem:
        return JsonResponse({"status": "error", "database": "error", "reason": problem}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


@require_GET
def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Browsers ask for /favicon.ico whatever the page says: send them to the static file."""
    return HttpResponsePermanentRedirect(static("favicon.ico"))


class QuietReadinessProbes(logging.Filter):
    """On ``django.request``: drop its "Service Unavailable" line for a degraded /readyz.

    A probe every few seconds would log an ERROR each time; the view logs the change once, at
    WARNING, with its reasons (ops.views.ReadinessLog).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        match = getattr(getattr(record, "request", None), "resolver_match", None)
        probe = match is not None and match.url_name == "readyz"
        return not (probe and getattr(record, "status_code", 500) == 503)
