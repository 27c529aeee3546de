"""The baseline a synchronous receiver is: verify, store and process the event in the request.

Served only by the benchmark (``DJANGO_SETTINGS_MODULE=bench.sync_settings``) to compare with
the real endpoint, which stores, enqueues and answers.
"""

from __future__ import annotations

import json

from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from billing.services import _INSERT_EVENT, event_params
from billing.tasks import process_event
from billing.views import event_problem, signature_problem


@csrf_exempt
def sync_webhook(request: HttpRequest) -> JsonResponse:
    body = request.body
    problem = signature_problem(body, request.headers.get("Stripe-Signature"))
    if problem:
        return JsonResponse({"error": problem}, status=400)
    event = json.loads(body)
    problem = event_problem(event)
    if problem:
        return JsonResponse({"error": problem}, status=400)
    with transaction.atomic():
        with connection.cursor() as cursor:
            values = event_params(event)
            cursor.execute(_INSERT_EVENT, {f"source_{i}": v for i, v in enumerate(values)})
            row = cursor.fetchone()
        if row is None:
            return JsonResponse({"received": True, "duplicate": True})
        process_event(row[0])
    return JsonResponse({"received": True})


urlpatterns = [
    path("billing/webhooks/stripe-sync/", sync_webhook),
    path("", include("config.urls")),
]
