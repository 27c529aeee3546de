from django.urls import include, path

from accounts import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("signup/done/", views.signup_done, name="signup_done"),
    path("activate/<uidb64>/<token>/", views.activate, name="activate"),
    # Before Django's auth URLs, so that this rate-limited view answers for this name and path.
    path("password_reset/", views.password_reset, name="password_reset"),
    path("login/", views.login_view, name="login"),
    path("", include("django.contrib.auth.urls")),
]
