"""Sign-up and activation: the same answer whether or not an address already has an account."""

from __future__ import annotations

import hashlib
import logging

from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.forms import SignupForm
from accounts.signals import welcome
from mail.services import queue_email

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
    """Queue the sign-up mail through the email jobs (sent once per cause, retried on failure).

    Each sign-up attempt is its own cause (its token differs), so a second attempt mails again.
    """
    token = default_token_generator.make_token(user)
    context = {
        "name": user.username,
        "activate_url": request.build_absolute_uri(
            reverse(
                "activate",
                args=[
                    urlsafe_base64_encode(force_bytes(user.pk)),
                    token,
                ],
            )
        ),
        "login_url": request.build_absolute_uri(reverse("login")),
        "reset_url": request.build_absolute_uri(reverse("password_reset")),
    }
    attempt = hashlib.sha256(f"{token}:{timezone.now().isoformat()}".encode()).hexdigest()[:16]
    queue_email(f"user:{user.pk}:signup:{attempt}", kind, to=user.email, context=context)
    logger.info("sign-up mail %s queued for user #%s", kind, user.pk)
