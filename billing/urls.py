"""Billing URLs: the user's billing pages, and Stripe's webhook endpoints (snapshot events,
and thin events)."""

from django.urls import path

from billing import account_views, thin, views

app_name = "billing"

urlpatterns = [
    path("", account_views.billing_page, name="account"),
    path("subscribe/", account_views.subscribe, name="subscribe"),
    path("top-up/", account_views.top_up, name="top-up"),
    path("portal/", account_views.portal, name="portal"),
    path("success/", account_views.success, name="success"),
    path("webhooks/stripe/", views.stripe_webhook, name="stripe-webhook"),
    path("webhooks/stripe/thin/", thin.stripe_thin_webhook, name="stripe-thin-webhook"),
]
