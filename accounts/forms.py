"""Sign-up form: Django's own, with a required e-mail address."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib.auth.forms import PasswordResetForm, UserCreationForm
from django.contrib.auth.models import User
from django.urls import reverse

from mail.services import queue_email


def normalise_email(value: str) -> str:
    """An address as every per-address rule compares it: trimmed and case-folded."""
    return value.strip().casefold()


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="Receipts and booking results go here.")

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def clean_email(self) -> str:
        return normalise_email(self.cleaned_data["email"])


class QueuedPasswordResetForm(PasswordResetForm):
    """Django's reset form, its mail sent through the email jobs instead of inline."""

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict,
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        path = reverse(
            "password_reset_confirm", kwargs={"uidb64": context["uid"], "token": context["token"]}
        )
        user = context["user"]
        # Each request is its own cause: asking twice mails twice (the link may be the same).
        queue_email(
            f"user:{user.pk}:reset:{uuid.uuid4().hex}",
            "password_reset",
            to=to_email,
            context={
                "name": user.get_username(),
                "reset_url": f"{context['protocol']}://{context['domain']}{path}",
            },
        )
