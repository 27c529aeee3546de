"""Sign-up and activation: the same answer whether or not an address already has an account,
and no account until its address is proved.

A sign-up stores a PendingSignup (user name, address, password hash) and mails a link to it.
Activating that link creates the account from that row, so the account is exactly what the
person who proved the address asked for; an earlier sign-up for the same address by someone
else never becomes it, and its link dies when the address is proved.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import User
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.forms import SignupForm, normalise_email
from accounts.models import PendingSignup
from accounts.signals import welcome
from mail.services import queue_email

logger = logging.getLogger(__name__)


class SignupTokenGenerator(PasswordResetTokenGenerator):
    """Django's reset-token scheme over a pending sign-up: valid for PASSWORD_RESET_TIMEOUT,
    and dead once the row is gone (activated, or replaced when its address was proved)."""

    key_salt = "accounts.services.SignupTokenGenerator"

    def _make_hash_value(self, pending: PendingSignup, timestamp: int) -> str:
        return f"{pending.pk}{pending.email}{pending.username}{pending.password}{timestamp}"


signup_token = SignupTokenGenerator()


class ActivationRefused(Exception):
    """The link is good but the account cannot be made; the message is for the person."""


class WrongPassword(ActivationRefused):
    """The password is not the one chosen at this sign-up: the link stays usable."""


def address_owners(email: str) -> QuerySet[User]:
    """Accounts that own `email`: active, or deactivated after use (staff may lock one).

    An inactive account that never logged in is a sign-up from before pending sign-ups
    existed: it never proved the address, so it owns nothing.
    """
    return User.objects.filter(email__iexact=email).filter(
        Q(is_active=True) | Q(last_login__isnull=False)
    )


def sign_up(form: SignupForm, request: HttpRequest) -> None:
    """Store a pending sign-up and mail its activation link, or mail the address's owner.

    The page afterwards is the same in every case ("check your e-mail"), so the form cannot be
    used to learn which addresses have accounts; only the mailbox's owner finds out.
    """
    user = form.save(commit=False)  # hashes the password in every branch: no timing tell
    email = normalise_email(user.email)
    owner = address_owners(email).order_by("pk").first()
    if owner is not None:
        _queue(request, f"user:{owner.pk}:signup:{timezone.now().timestamp()}", owner.email,
               "account_exists", owner.username)  # fmt: skip
        return
    expired = timezone.now() - timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)
    PendingSignup.objects.filter(created_at__lt=expired).delete()  # their links are dead
    pending = PendingSignup.objects.create(
        username=user.username, email=email, password=user.password
    )
    _queue(request, f"signup:{pending.pk}", email, "activation", pending.username, pending)


def pending_of(uidb64_value: str) -> PendingSignup | None:
    """The pending sign-up an activation link names, if it still exists."""
    try:
        return PendingSignup.objects.filter(pk=int(uidb64_value)).first()
    except (ValueError, OverflowError):
        return None


def activate(pending_id: int, token: str, password: str) -> User | None:
    """Create the account a pending sign-up asked for; None when the link is not (any more) good.

    The link proves the address; the password chosen at sign-up proves that the person at
    that mailbox made this sign-up (a stranger's sign-up for their address mails them a link
    too, and must not become their account). Raises ActivationRefused for a wrong password,
    when the address got an owner meanwhile, or when the user name was taken meanwhile. Two
    activations for one address take turns (an advisory lock on the address), so it gets one
    account, and every other pending sign-up for it is deleted.
    """
    with transaction.atomic():
        pending = PendingSignup.objects.select_for_update().filter(pk=pending_id).first()
        if pending is None or not signup_token.check_token(pending, token):
            return None
        if not check_password(password, pending.password):
            raise WrongPassword(
                "That is not the password chosen at this sign-up. If you did not sign up as "
                f"{pending.username!r}, someone else used your address: ignore that e-mail."
            )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"accounts.signup:{pending.email}"],
            )
        others = PendingSignup.objects.filter(email=pending.email)
        if address_owners(pending.email).exists():
            others.delete()
            raise ActivationRefused(
                "This address already has an account: log in, or reset its password."
            )
        if User.objects.filter(username__iexact=pending.username).exists():
            pending.delete()
            raise ActivationRefused(
                f"The user name {pending.username!r} was taken meanwhile: sign up again with "
                "another one."
            )
        User.objects.filter(email__iexact=pending.email, is_active=False, last_login=None).delete()
        user = User(username=pending.username, email=pending.email, password=pending.password)
        user.save()
        others.delete()
        welcome(user)  # the same transaction: one welcome per account
    logger.info("sign-up activated as user #%s", user.pk)
    return user


def _queue(
    request: HttpRequest,
    cause: str,
    to: str,
    kind: str,
    name: str,
    pending: PendingSignup | None = None,
) -> None:
    """Queue the sign-up mail through the email jobs (sent once per cause, retried on failure)."""
    context = {
        "name": name,
        "login_url": request.build_absolute_uri(reverse("login")),
        "reset_url": request.build_absolute_uri(reverse("password_reset")),
    }
    if pending is not None:
        uid = urlsafe_base64_encode(force_bytes(pending.pk))
        path = reverse("activate", args=[uid, signup_token.make_token(pending)])
        context["activate_url"] = request.build_absolute_uri(path)
    queue_email(cause, kind, to=to, context=context)
    logger.info("sign-up mail %s queued (%s)", kind, cause.split(":", 1)[0])
