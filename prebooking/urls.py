from django.urls import path

from prebooking import views

app_name = "prebooking"
urlpatterns = [
    path("", views.prebooking_list, name="list"),
    path("new/", views.prebooking_new, name="new"),
    path("status.json", views.prebooking_status, name="status"),
    path("<int:prebooking_id>/", views.prebooking_detail, name="detail"),
    path("<int:prebooking_id>/cancel/", views.prebooking_cancel, name="cancel"),
]
