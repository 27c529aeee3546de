from django.urls import path

from prebooking import views
from prebooking.aimharder import views as aimharder_views

app_name = "prebooking"
urlpatterns = [
    path("", views.prebooking_list, name="list"),
    path("new/", views.prebooking_new, name="new"),
    path("status.json", views.prebooking_status, name="status"),
    path("<int:prebooking_id>/", views.prebooking_detail, name="detail"),
    path("<int:prebooking_id>/status.json", views.prebooking_detail_status, name="detail-status"),
    path("<int:prebooking_id>/cancel/", views.prebooking_cancel, name="cancel"),
    # AimHarder
    path("accounts/", aimharder_views.accounts, name="accounts"),
    path("accounts/<int:account_id>/unlink/", aimharder_views.unlink, name="unlink"),
    path("accounts/boxes/<int:box_id>/rule/", aimharder_views.box_rule, name="box-rule"),
    path("classes/", aimharder_views.classes, name="classes"),
    path("classes/pick/", aimharder_views.pick, name="pick"),
    path(
        "<int:prebooking_id>/cancel-booking/",
        aimharder_views.cancel_booking,
        name="cancel-booking",
    ),
]
