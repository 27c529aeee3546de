"""Abuse limits shared by the apps: the client's address behind proxies, form rate limits, CSP.

One rule for the client address serves both django-axes (login lockouts) and django-ratelimit
(signup and password-reset limits), so they can never disagree about who a client is.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from functools import wraps

from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_ratelimit.core import is_ratelimited

logger = logging.getLogger(__name__)


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str:
    """The client's IP address: REMOTE_ADDR, or the address our trusted proxies saw.

    With ``TRUSTED_PROXY_COUNT = n`` (the number of reverse proxies in front of the web server,
    each appending the address it received from to X-Forwarded-For), the client is the n-th entry
    from the right. Entries further left were written by the client and can be forged, so they
    are never used. A shorter header than expected means the request bypassed a proxy: then
    REMOTE_ADDR is the only address we can trust.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part]
    if len(forwarded) < hops:
        return remote
    return _valid_ip(forwarded[-hops]) or remote


def rate_limit(
    group: str,
    key: str | Callable[[str, HttpRequest], str],
    rate_setting: str,
    method: str | tuple[str, ...] = "POST",
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Limit requests (POSTs unless `method` says) to a view per `key` ("ip", "user", or a
    function of (group, request), as django-ratelimit takes it).

    The rate is ``settings.<rate_setting>``.
    Over the limit the view is not called; the client gets 429 and a page saying when to retry.
    Counters live in the shared "ratelimit" cache (PostgreSQL), so every web worker and
    every machine counts together.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def limited_view(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            refused = over_limit(request, group, key, rate_setting, method)
            return refused or view(request, *args, **kwargs)

        return limited_view

    return decorator


def over_limit(
    request: HttpRequest,
    group: str,
    key: str | Callable[[str, HttpRequest], str],
    rate_setting: str,
    method: str | tuple[str, ...] = "POST",
) -> HttpResponse | None:
    """Count this request against the limit; the 429 page when it is past it, else None.

    For a view that counts only some requests (e.g. a valid form), where the decorator would
    count every one.
    """
    rate = getattr(settings, rate_setting)
    if is_ratelimited(request, group=group, key=key, rate=rate, method=method, increment=True):
        logger.warning("rate limit %s (%s) hit by %s", group, rate, client_ip(request))
        return render(request, "registration/rate_limited.html", {"rate": rate}, status=429)
    return None


# Responses a browser may render as a document, where a Content-Security-Policy means something.
DOCUMENT_TYPES = (
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/xml",
    "application/xml",
)


class CSPMiddleware(DjangoCSPMiddleware):
    """django-csp's middleware, for documents only.

    Building the header has a cost on every response; on JSON (the webhook, health and metrics
    endpoints), CSS, scripts and images it protects nothing, and the webhook's cheap rejection
    of unsigned floods is where that cost counts.
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        content_type = response.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type not in DOCUMENT_TYPES:
            return response
        return super().process_response(request, response)
