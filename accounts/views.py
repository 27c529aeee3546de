"""Account pages that Django's auth views do not provide: sign-up, activation, home page.

Sign-up and password reset are rate limited (core.security); logins are throttled by
django-axes through the authentication backend.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts import ceiling, services
from accounts.forms import QueuedPasswordResetForm, SignupForm, normalise_email
from core.security import over_limit, rate_limit


def home(request: HttpRequest) -> HttpResponse:
    """The landing page; signed-in users go straight to their prebookings."""
    if request.user.is_authenticated:
        return redirect("/prebookings/")
    return render(request, "accounts/home.html")


def mail_address_key(group: str, request: HttpRequest) -> str:
    """The address a sign-up or a reset would mail, as the forms match it (trimmed, folded)."""
    return normalise_email(request.POST.get("email", ""))


# Mail to one address from sign-up and password reset together, however it is spelled: a
# stranger cannot fill someone's mailbox. Counted per request that would mail, whether or not
# the address has an account, so a refusal tells nothing about that.
MAIL_LIMIT = ("mail-to-address", mail_address_key, "MAIL_ADDRESS_RATE")


@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
@rate_limit("signup", "ip", "SIGNUP_RATE")
def signup(request: HttpRequest) -> HttpResponse:
    """Store a pending sign-up and mail its activation link (see services.sign_up)."""
    if request.user.is_authenticated:
        return redirect("/prebookings/")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # Only a valid form mails: a person fixing a typo does not use up the address's mails.
        refused = over_limit(request, *MAIL_LIMIT)
        if refused:
            return refused
        services.sign_up(form, request)
        return redirect("signup_done")
    return render(request, "registration/signup.html", {"form": form})


def signup_done(request: HttpRequest) -> HttpResponse:
    """The one answer every valid sign-up gets."""
    return render(request, "registration/signup_done.html")


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
# The password asked here is a guess target like a log-in: the same per-address limit.
@rate_limit("login", "ip", "LOGIN_IP_RATE")
def activate(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """Create the account on POST with the sign-up's password (link scanners only GET), then
    sign its owner in."""
    try:
        pending = services.pending_of(force_str(urlsafe_base64_decode(uidb64)))
    except ValueError:
        pending = None
    context = {
        "validlink": pending is not None and services.signup_token.check_token(pending, token)
    }
    if request.method == "POST" and context["validlink"]:
        try:
            user = services.activate(pending.pk, token, request.POST.get("password", ""))
        except services.WrongPassword as wrong:
            context["error"] = str(wrong)
            return render(request, "registration/activate.html", context, status=400)
        except services.ActivationRefused as refused:
            context = {"validlink": False, "refused": str(refused)}
            return render(request, "registration/activate.html", context, status=409)
        if user is not None:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("/prebookings/")
        context["validlink"] = False
    return render(request, "registration/activate.html", context)


password_reset = rate_limit("password_reset", "ip", "PASSWORD_RESET_IP_RATE")(
    rate_limit(*MAIL_LIMIT)(
        auth_views.PasswordResetView.as_view(form_class=QueuedPasswordResetForm)
    )
)


# An address trying many accounts: each (account, address) pair locks after a few failures
# (django-axes); this bounds how fast one address may try, whichever accounts, on either page.
# Many addresses trying one account: past its ceiling, slowed (accounts.ceiling).
login_view = rate_limit("login", "ip", "LOGIN_IP_RATE")(
    ceiling.limited(auth_views.LoginView.as_view())
)
admin_login = rate_limit("login", "ip", "LOGIN_IP_RATE")(ceiling.limited(admin.site.login))
