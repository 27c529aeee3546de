"""Account pages that Django's auth views do not provide: sign-up, activation, home page.

Sign-up and password reset are rate limited (core.security); logins are throttled by
django-axes through the authentication backend.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts import services
from accounts.forms import QueuedPasswordResetForm, SignupForm
from core.security import rate_limit


def home(request: HttpRequest) -> HttpResponse:
    """The landing page; signed-in users go straight to their prebookings."""
    if request.user.is_authenticated:
        return redirect("/prebookings/")
    return render(request, "accounts/home.html")


@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
@rate_limit("signup", "ip", "SIGNUP_RATE")
def signup(request: HttpRequest) -> HttpResponse:
    """Create an inactive account and mail its activation link (see services.sign_up)."""
    if request.user.is_authenticated:
        return redirect("/prebookings/")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.sign_up(form, request)
        return redirect("signup_done")
    return render(request, "registration/signup.html", {"form": form})


def signup_done(request: HttpRequest) -> HttpResponse:
    """The one answer every valid sign-up gets."""
    return render(request, "registration/signup_done.html")


@require_http_methods(["GET", "POST"])
def activate(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """Activate the account on POST (link scanners only GET), then sign the user in."""
    try:
        user = User.objects.get(pk=int(force_str(urlsafe_base64_decode(uidb64))))
    except (ValueError, OverflowError, User.DoesNotExist):
        user = None
    valid = user is not None and default_token_generator.check_token(user, token)
    if request.method == "POST" and valid:
        services.activate(user)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("/prebookings/")
    return render(request, "registration/activate.html", {"validlink": valid}, status=200)


password_reset = rate_limit("password_reset_address", "post:email", "PASSWORD_RESET_RATE")(
    rate_limit("password_reset", "ip", "PASSWORD_RESET_IP_RATE")(
        auth_views.PasswordResetView.as_view(form_class=QueuedPasswordResetForm)
    )
)


# An address trying many accounts: each (account, address) pair locks after a few failures
# (django-axes); this bounds how fast one address may try, whichever accounts, on either page.
login_view = rate_limit("login", "ip", "LOGIN_IP_RATE")(auth_views.LoginView.as_view())
admin_login = rate_limit("login", "ip", "LOGIN_IP_RATE")(admin.site.login)
