"""Operations endpoints: readiness, Prometheus metrics and the admin dashboard.

They live in an app of their own because they read every app: the jobs layer's queue, the
Stripe event backlog and prebooking lateness.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from billing import selectors as billing_selectors
from billing.metrics import StripeEventCollector
from jobs import selectors
from jobs.metrics import QueueCollector
from ops.health import database_answers

logger = logging.getLogger(__name__)
HEARTBEAT_MAX_AGE_S = 30
OLDEST_EVENT_BAD = timedelta(minutes=5)  # the webhook answers at once; a worker should follow


def unattended_reason(unattended: selectors.Unattended) -> str:
    """A queue nobody works, as /readyz and the dashboard say it: for how long, and why."""
    if unattended.last_seen_s is None:
        seen = "no worker of it seen in the last day"
    else:
        seen = f"its last worker was seen {unattended.last_seen_s} s ago"
    return (
        f"queue {unattended.queue!r} has had due work and no live worker for "
        f"{unattended.seconds} s ({seen})"
    )


def _readiness() -> list[tuple[str, str]]:
    """(what kind of problem, how to say it) for each reason not to take traffic."""
    problem = database_answers(log_failure=False)
    if problem:
        return [("database", problem)]
    problems = [
        (f"unattended:{unattended.queue}", unattended_reason(unattended))
        for unattended in selectors.queues_without_workers()
    ]
    backlog = selectors.backlog()
    if backlog >= settings.READY_MAX_BACKLOG:
        problems.append(
            ("backlog", f"backlog of {backlog} due jobs (limit {settings.READY_MAX_BACKLOG})")
        )
    return problems


def readiness_problems() -> list[str]:
    """Why this deployment should not take traffic, or an empty list when it should."""
    return [text for _, text in _readiness()]


class ReadinessLog:
    """Logs a change of readiness once: a WARNING with the reasons when it goes degraded (or
    the kinds of problem change), an INFO when it is ready again; not once per probe.

    Per process: each web worker says it once, which is what a reader of the logs needs.
    """

    def __init__(self) -> None:
        self.kinds: frozenset[str] = frozenset()
        self.lock = threading.Lock()

    def note(self, problems: list[tuple[str, str]]) -> None:
        kinds = frozenset(kind for kind, _ in problems)
        with self.lock:
            if kinds == self.kinds:
                return
            self.kinds = kinds
        if problems:
            logger.warning("not ready: %s", "; ".join(text for _, text in problems))
        else:
            logger.info("ready again")


READINESS_LOG = ReadinessLog()


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers, every queue with due work has a live worker, and the
    backlog is bounded."""
    problems = _readiness()
    READINESS_LOG.note(problems)
    if problems:
        return JsonResponse(
            {"status": "degraded", "reasons": [text for _, text in problems]}, status=503
        )
    return JsonResponse({"status": "ok", "backlog": selectors.backlog()})


def metric_collectors() -> list:
    """Collectors that read the database at scrape time (one per app)."""
    return [QueueCollector(), StripeEventCollector()]


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format: process counters (summed over processes) and database gauges."""
    token = settings.METRICS_TOKEN
    if token and not constant_time_compare(
        request.headers.get("Authorization", ""), f"Bearer {token}"
    ):
        return JsonResponse(
            {"error": "metrics need Authorization: Bearer <METRICS_TOKEN>"}, status=401
        )
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
        sources = [registry]
    else:
        sources = [REGISTRY, registry]
    for collector in metric_collectors():
        registry.register(collector)
    body = b"".join(generate_latest(source) for source in sources)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, ... not below `value`: an axis top."""
    step = 1
    while True:
        for factor in (1, 2, 3, 4, 5, 6, 8):
            if step * factor >= value:
                return step * factor
        step *= 10


def bar_chart(series: list[dict], width: int = 720, height: int = 180) -> dict:
    """Geometry of a server-rendered SVG bar chart of totals and failures per hour."""
    # Failures can outnumber totals in an hour (retries of older work): scale to both.
    peak = nice_ceiling(max([row["total"] for row in series] + [r["failures"] for r in series]))
    left, bottom, top = 40, 24, 10  # room for the axis labels
    plot_h = height - bottom - top
    base = height - bottom
    slot = (width - left) / max(len(series), 1)
    bars = []
    for index, row in enumerate(series):
        total_h = round(row["total"] / peak * plot_h, 1)
        fail_h = round(row["failures"] / peak * plot_h, 1)
        x = left + index * slot
        bars.append(
            {
                "x": round(x + 2, 1),
                "w": round(slot - 4, 1),
                "total_y": round(base - total_h, 1),
                "total_h": total_h,
                "fail_y": round(base - fail_h, 1),
                "fail_h": fail_h,
                "label": row["hour"].strftime("%H") if index % 3 == 0 else "",
                "label_x": round(x + slot / 2, 1),
                "total": row["total"],
                "failures": row["failures"],
                "hour": row["hour"],
            }
        )
    grid = [
        {"y": round(base - plot_h * share, 1), "value": round(peak * share)}
        for share in (0, 0.5, 1)
        if peak * share == int(peak * share)
    ]
    return {
        "bars": bars,
        "grid": grid,
        "width": width,
        "height": height,
        "left": left,
        "peak": peak,
        "base": height - 5,
        "total_sum": sum(row["total"] for row in series),
        "failure_sum": sum(row["failures"] for row in series),
    }


def age_text(age: timedelta | None) -> str:
    """A waiting time as a person reads it, short enough for a card: "42 s", "61 min",
    "3 h 05", "2 d 4 h", or "none"."""
    if age is None:
        return "none"
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d}"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def stripe_event_cards(now) -> tuple[list[dict], list[dict]]:
    """The dashboard's Stripe event cards, and its events-per-hour series."""
    events_url = reverse("admin:billing_stripeevent_changelist")
    attention = billing_selectors.needing_attention()
    oldest = billing_selectors.oldest_unprocessed_age(now)
    series = billing_selectors.events_per_hour(24, now)
    cards = [
        {
            "label": "Stripe events, 24 h",
            "value": sum(row["total"] for row in series),
            "url": events_url,
        },
        {
            "label": "Oldest unprocessed event",
            "value": age_text(oldest),
            "tone": "bad" if oldest and oldest > OLDEST_EVENT_BAD else "",
        },
        {
            "label": "Events failing, retrying",
            "value": attention["failed"],
            "url": f"{events_url}?status__exact=received&job__status__exact=retrying",
            "tone": "warn" if attention["failed"] else "",
        },
        {
            "label": "Dead events",
            "value": attention["dead"],
            "url": f"{events_url}?status__exact=dead",
            "tone": "bad" if attention["dead"] else "ok",
        },
    ]
    return cards, series


@staff_member_required
@never_cache
def dashboard(request: HttpRequest) -> HttpResponse:
    """The admin's live dashboard: queue states, backlog age, activity, workers, Stripe events."""
    from django.contrib import admin

    now = timezone.now()
    counts = selectors.queue_counts(now)
    totals = {state: sum(queue[state] for queue in counts.values()) for state in selectors.STATES}
    oldest = selectors.oldest_due_age(now)
    event_cards, event_series = stripe_event_cards(now)
    clusters = selectors.worker_clusters(now)
    context = {
        **admin.site.each_context(request),
        "is_nav_sidebar_enabled": False,  # the cards and charts need the width
        "title": "Operations dashboard",
        "now": now,
        "queues": counts,
        "states": selectors.STATES,
        "totals": totals,
        "oldest_due": age_text(oldest),
        "oldest_due_bad": bool(oldest and oldest > timedelta(minutes=5)),
        "charts": [
            {
                "title": "Stripe events per hour, last 24 hours",
                "total_label": "events received",
                "failure_label": "failed processing attempts",
                **bar_chart(event_series),
            },
            {
                "title": "Job attempts per hour, last 24 hours",
                "total_label": "attempts",
                "failure_label": "failed attempts",
                **bar_chart(selectors.attempts_per_hour(24, now)),
            },
        ],
        "clusters": clusters,
        "live_clusters": [cluster for cluster in clusters if not cluster["stale"]],
        "readiness": readiness_problems(),
        "event_cards": event_cards,
    }
    return render(request, "admin/dashboard.html", context)
