"""Billing URLs: Stripe's webhook endpoint."""

from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("webhooks/stripe/", views.stripe_webhook, name="stripe-webhook"),
]
