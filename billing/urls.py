"""Billing URLs: Stripe's webhook endpoints (snapshot events, and thin events)."""

from django.urls import path

from billing import thin, views

app_name = "billing"

urlpatterns = [
    path("webhooks/stripe/", views.stripe_webhook, name="stripe-webhook"),
    path("webhooks/stripe/thin/", thin.stripe_thin_webhook, name="stripe-thin-webhook"),
]
