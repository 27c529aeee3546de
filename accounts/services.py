"""Sign-up and activation: the same answer whether or not an address already has an account."""

from __future__ import annotations

import logging

from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.forms import SignupForm
from accounts.signals import welcome

logger = logging.getLogger(__name__)


def sign_up(form: SignupForm, request: HttpRequest) -> None:
    """Register a new inactive account and mail its activation link, or mail the address's owner.

    The page afterwards is the same in every case ("check your e-mail"), so the form cannot be
    used to learn which addresses have accounts; only the mailbox's owner finds out.
    """
    user = form.save(commit=False)  # hashes the password in every branch: no timing tell
    existing = User.objects.filter(email__iexact=user.email).order_by("pk").first()
    if existing is None:
        user.is_active = False
        user.save()
        _send(request, user, "activation")
    elif not existing.is_active:
        _send(request, existing, "activation")
    else:
        _send(request, existing, "account_exists")


def activate(user: User) -> bool:
    """Mark `user` active; True only for the call that did it (a conditional UPDATE).

    That call also queues the welcome email, in the same transaction: one welcome per account.
    """
    with transaction.atomic():
        won = bool(User.objects.filter(pk=user.pk, is_active=False).update(is_active=True))
        if won:
            welcome(user)
    return won


def _send(request: HttpRequest, user: User, kind: str) -> None:
    context = {
        "user": user,
        "activate_url": request.build_absolute_uri(
            reverse(
                "activate",
                args=[
                    urlsafe_base64_encode(force_bytes(user.pk)),
                    default_token_generator.make_token(user),
                ],
            )
        ),
        "login_url": request.build_absolute_uri(reverse("login")),
        "reset_url": request.build_absolute_uri(reverse("password_reset")),
    }
    subject = render_to_string(f"emails/{kind}_subject.txt", context).strip()
    body = render_to_string(f"emails/{kind}.txt", context)
    send_mail(subject, body, None, [user.email])
    logger.info("sign-up mail %s sent to user #%s", kind, user.pk)
