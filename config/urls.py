"""URL map of the project."""

from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views

admin.site.site_header = "Prebook console"
admin.site.site_title = "Prebook console"
admin.site.index_title = "Billing, jobs and prebookings"
# The lists carry many columns; the app sidebar would push them past 1280 px.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("", account_views.home, name="home"),
    path("accounts/", include("accounts.urls")),
    path("", include("ops.urls")),  # before admin/: it serves admin/dashboard/
    path("admin/login/", account_views.admin_login),  # rate limited, then the admin's own
    path("admin/", admin.site.urls),
    path("billing/", include("billing.urls")),
    path("prebookings/", include("prebooking.urls")),
]
