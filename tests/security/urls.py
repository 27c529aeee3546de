"""A view that fails with secrets in its message and locals, for the error-report tests."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

LIVE_KEY = "sk_live_51AbCdEfGhIjKlMnOpQrStUv"


def fails_with_secrets(request: HttpRequest) -> HttpResponse:
    api_key = LIVE_KEY
    webhook_secret = request.POST.get("webhook_secret", "")
    raise RuntimeError(f"Stripe refused key {api_key} (secret {webhook_secret})")


urlpatterns = [path("boom/", fails_with_secrets)]
