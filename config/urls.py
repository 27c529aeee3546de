"""URL map of the project."""

from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views
from config import ops, views

admin.site.site_header = "Prebook console"
admin.site.site_title = "Prebook console"
admin.site.index_title = "Billing, jobs and prebookings"
# The lists carry many columns; the app sidebar would push them past 1280 px.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("", account_views.home, name="home"),
    path("accounts/", include("accounts.urls")),
    path("admin/dashboard/", ops.dashboard, name="ops-dashboard"),
    path("admin/login/", account_views.admin_login),  # rate limited, then the admin's own
    path("admin/", admin.site.urls),
    path("billing/", include("billing.urls")),
    path("favicon.ico", views.favicon, name="favicon"),
    path("healthz", views.healthz, name="healthz"),
    path("prebookings/", include("prebooking.urls")),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
]
