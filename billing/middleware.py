"""Stripe's webhooks skip the middleware they have no use for.

A webhook request carries no session, cookie, CSRF token or login, and its answer is JSON: the
session, CSRF, authentication, messages, clickjacking and lockout middleware below this one do
nothing for it but cost CPU on every event (bench/cost.py measures the ack). So this
middleware, placed after the request id and security ones, answers the webhook paths itself
with their views, and hands every other request on unchanged. A view's exception still becomes
a 500 through Django's handler, as for any middleware.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, ResolverMatch, resolve, reverse


class WebhookMiddleware:
    """Answer POSTs to the Stripe webhook endpoints without the rest of the middleware chain."""

    URL_NAMES = ("billing:stripe-webhook", "billing:stripe-thin-webhook")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._routes: dict[str, dict[str, ResolverMatch]] = {}

    def routes(self) -> dict[str, ResolverMatch]:
        """The webhook paths of the URLconf in use (resolved on first use: the URLconf is not
        importable while middleware is built); none when it has no webhooks."""
        urlconf = settings.ROOT_URLCONF
        if urlconf not in self._routes:
            found = {}
            for name in self.URL_NAMES:
                try:
                    path = reverse(name)
                except NoReverseMatch:
                    continue
                found[path] = resolve(path)
            self._routes[urlconf] = found
        return self._routes[urlconf]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        match = self.routes().get(request.path_info)
        if match is None:
            return self.get_response(request)
        request.resolver_match = match  # the request metrics label by route
        return match.func(request, *match.args, **match.kwargs)


class QuietWebhookRefusals(logging.Filter):
    """On ``django.request``: drop its "Bad Request" line for a refused webhook delivery.

    The view logs every refusal once, with its reason (billing.views); Django's second line says
    less and, under an unsigned flood, doubles the log volume and the CPU the refusals cost.
    Server errors (5xx) and every other route keep Django's line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        match = getattr(getattr(record, "request", None), "resolver_match", None)
        webhook = match is not None and match.view_name in WebhookMiddleware.URL_NAMES
        return not (webhook and getattr(record, "status_code", 500) < 500)
