"""The baseline a synchronous receiver is: verify, store and process the event in the request.

Served only by the benchmark (``DJANGO_SETTINGS_MODULE=bench.sync_settings``) to compare with
the real endpoint, which stores, enqueues and answers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from billing.tasks import process_event
from billing.views import event_problem, signature_problem

INSERT_EVENT = """
INSERT INTO billing_stripeevent
       (stripe_id, type, api_version, livemode, created, payload, status, received_at)
VALUES (%s, %s, %s, %s, %s, %s::jsonb, 'received', now())
    ON CONFLICT (stripe_id) DO NOTHING
RETURNING id
"""


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
            cursor.execute(
                INSERT_EVENT,
                [
                    event["id"],
                    event["type"],
                    event.get("api_version") or "",
                    bool(event.get("livemode", False)),
                    datetime.fromtimestamp(event["created"], tz=UTC),
                    body.decode(),
                ],
            )
            row = cursor.fetchone()
        if row is None:
            return JsonResponse({"received": True, "duplicate": True})
        process_event.call(row[0])
    return JsonResponse({"received": True})


urlpatterns = [
    path("billing/webhooks/stripe-sync/", sync_webhook),
    path("", include("config.urls")),
]
