"""Operations endpoints: readiness, Prometheus metrics and the admin dashboard.

They live at the project level because they read every app: the jobs layer's queue, the
Stripe event backlog and prebooking lateness.
"""

from __future__ import annotations

import os
from datetime import timedelta

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from config.views import database_answers
from jobs import selectors
from jobs.metrics import QueueCollector

HEARTBEAT_MAX_AGE_S = 30


def readiness_problems() -> list[str]:
    """Why this deployment should not take traffic, or an empty list when it should."""
    problem = database_answers()
    if problem:
        return [problem]
    problems = []
    clusters = selectors.clusters_alive()
    if not clusters:
        problems.append("no worker cluster alive (no django-q2 heartbeat)")
    backlog = selectors.backlog()
    if backlog >= settings.READY_MAX_BACKLOG:
        problems.append(f"backlog of {backlog} due jobs (limit {settings.READY_MAX_BACKLOG})")
    return problems


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database answers, a worker cluster is alive, the backlog is bounded."""
    problems = readiness_problems()
    if problems:
        return JsonResponse({"status": "degraded", "reasons": problems}, status=503)
    return JsonResponse({"status": "ok", "backlog": selectors.backlog()})


def metric_collectors() -> list:
    """Collectors that read the database at scrape time (one per app)."""
    collectors = [QueueCollector()]
    return collectors


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


def bar_chart(series: list[dict], width: int = 720, height: int = 160) -> dict:
    """Geometry of a server-rendered SVG bar chart of attempts and failures per hour."""
    peak = max([row["total"] for row in series] + [1])
    slot = width / max(len(series), 1)
    bars = []
    for index, row in enumerate(series):
        total_h = round(row["total"] / peak * (height - 20), 1)
        fail_h = round(row["failures"] / peak * (height - 20), 1)
        bars.append(
            {
                "x": round(index * slot + 2, 1),
                "w": round(slot - 4, 1),
                "total_y": round(height - 14 - total_h, 1),
                "total_h": total_h,
                "fail_y": round(height - 14 - fail_h, 1),
                "fail_h": fail_h,
                "label": row["hour"].strftime("%H"),
                "label_x": round(index * slot + slot / 2, 1),
                "total": row["total"],
                "failures": row["failures"],
                "hour": row["hour"],
            }
        )
    return {"bars": bars, "width": width, "height": height, "peak": peak, "base": height - 2}


@staff_member_required
@never_cache
def dashboard(request: HttpRequest) -> HttpResponse:
    """The admin's live dashboard: queue states, backlog age, activity, workers."""
    from django.contrib import admin

    now = timezone.now()
    counts = selectors.queue_counts(now)
    totals = {state: sum(queue[state] for queue in counts.values()) for state in selectors.STATES}
    oldest = selectors.oldest_due_age(now)
    context = {
        **admin.site.each_context(request),
        "title": "Operations dashboard",
        "now": now,
        "queues": counts,
        "states": selectors.STATES,
        "totals": totals,
        "oldest_due": oldest,
        "oldest_due_bad": bool(oldest and oldest > timedelta(minutes=5)),
        "chart": bar_chart(selectors.attempts_per_hour(24, now)),
        "clusters": selectors.clusters_alive(),
        "readiness": readiness_problems(),
        "extra_cards": [],
    }
    return render(request, "admin/dashboard.html", context)
