"""Account emails (welcome, password changed, email changed) through the billing email jobs.

Django's auth views save the user; these receivers notice what changed and queue the email in
the same database connection, once per cause: a password change is keyed by the new hash, an
address change by the pair of addresses.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import User
from django.urls import reverse

from mail.services import queue_email


def welcome(user: User) -> None:
    """Queue the welcome email of a newly activated sign-up (once per user)."""
    if user.email:
        queue_email(f"user:{user.pk}", "welcome", to=user.email, context={"name": user.username})


def remember_previous(sender: type[User], instance: User, update_fields: Any, **_: Any) -> None:
    """pre_save: keep the stored email and password hash to compare after the save."""
    instance._previous = None
    if instance.pk is None:
        return
    if update_fields is not None and not {"email", "password"} & set(update_fields):
        return  # e.g. the last_login update on every login: nothing to compare, no query
    previous = User.objects.filter(pk=instance.pk).values_list("email", "password").first()
    # set_password() keeps the raw password until the save ends. A hash written without it is
    # Django upgrading the hash of the same password on login; the same raw password set
    # again is no change either.
    raw = getattr(instance, "_password", None)
    if previous and (raw is None or check_password(raw, previous[1])):
        previous = (previous[0], instance.password)
    instance._previous = previous


def notify_changes(sender: type[User], instance: User, created: bool, **_: Any) -> None:
    """post_save: tell a user when their password or address changed."""
    user_cause = f"user:{instance.pk}"
    if created:
        return  # a sign-up is welcomed when its activation link is used (services.activate)
    previous = getattr(instance, "_previous", None)
    if previous is None:
        return
    old_email, old_password = previous
    if old_password != instance.password and instance.email:
        digest = hashlib.sha256(instance.password.encode()).hexdigest()[:16]
        queue_email(
            f"{user_cause}:password:{digest}",
            "password_changed",
            to=instance.email,
            context={
                "name": instance.username,
                "reset_url": settings.SITE_URL + reverse("password_reset"),
            },
        )
    if old_email != instance.email and old_email and instance.email:
        cause = f"{user_cause}:email:{old_email}->{instance.email}"
        context = {"name": instance.username, "old_email": old_email, "new_email": instance.email}
        queue_email(cause, "email_changed_old", to=old_email, context=context)
        queue_email(cause, "email_changed_new", to=instance.email, context=context)
