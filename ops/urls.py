"""Operations endpoints: liveness, readiness, Prometheus metrics, the admin dashboard."""

from django.urls import path

from ops import health, views

urlpatterns = [
    path("admin/dashboard/", views.dashboard, name="ops-dashboard"),
    path("favicon.ico", health.favicon, name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
]
