"""E-mails as their own jobs: queued with their cause, sent at most once per (cause, template).

`queue_email` runs inside the transaction of whatever caused the email (an event handler, a
dunning step, a user's sign-up, a failed prebooking), so the email exists only if its cause
committed. The `mail.tasks.send` task then sends it through Django's mail API (anymail picks
the ESP).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from jobs.backend import task_named
from jobs.errors import PermanentError
from mail.models import Email

logger = logging.getLogger(__name__)

SEND_JOB = "mail.tasks.send"  # by name: mail.tasks imports this module

# Every e-mail there is: its template under templates/emails/ (.txt and .html) and its subject,
# whose {placeholders} read the e-mail's context.
SUBJECTS: dict[str, str] = {
    "activation": "Activate your Prebook account",
    "account_exists": "You already have a Prebook account",
    "welcome": "Welcome to Prebook",
    "password_changed": "Your password was changed",
    "password_reset": "Reset your password",
    "email_changed_old": "Your email address was changed",
    "email_changed_new": "This is now your email address",
    "trial_ending": "Your trial ends soon",
    "payment_failed": "Your payment failed",
    "subscription_created": "Your subscription is confirmed",
    "subscription_canceled": "Your subscription has been canceled",
    "receipt": "Receipt for your payment",
    "dunning_reminder": "Reminder: your invoice is still unpaid",
    "dunning_final": "Final notice: your subscription will be canceled on {cancel_on}",
    "prebooking_failed": "Your booking for {class_id} did not go through",
}

# Emails about a state that may have passed by the time the job runs (a payment that came in
# meanwhile): the app that queues them registers a check, run at send time; False skips it.
STILL_RELEVANT: dict[str, Callable[[dict[str, Any]], bool]] = {}


# Values an app's templates read that its e-mails need not carry (billing: links to its pages),
# computed at send time; what the e-mail's own context holds wins.
CONTEXT_DEFAULTS: list[Callable[[Email], dict[str, Any]]] = []


class RecipientUnknown(Exception):
    """No address yet (the customer.created event may still be on its way): retry later."""


def still_relevant_when(template: str, check: Callable[[dict[str, Any]], bool]) -> None:
    """Send `template` e-mails only while `check(context)` holds (apps call it in ready())."""
    STILL_RELEVANT[template] = check


def add_context_defaults(defaults: Callable[[Email], dict[str, Any]]) -> None:
    """Give every e-mail's template `defaults(email)` where its context lacks them (apps call it
    in ready())."""
    CONTEXT_DEFAULTS.append(defaults)


def queue_email(
    cause: str,
    template: str,
    *,
    customer: Any = None,
    to: str = "",
    context: dict[str, Any] | None = None,
) -> Email:
    """Create the email and its send job in the caller's transaction, once per (cause, template).

    `to` is the address, or empty for `customer`'s (a billing.Customer), read when it is sent.
    """
    if template not in SUBJECTS:
        raise ValueError(f"unknown email template {template!r}")
    key = f"{cause}:{template}"[:255]
    email, created = Email.objects.get_or_create(
        key=key,
        defaults={"template": template, "customer": customer, "to": to, "context": context or {}},
    )
    if created:
        task_named(SEND_JOB).using(target=f"mail.email:{email.pk}").enqueue(email_id=email.pk)
    return email


def _recipient(email: Email) -> str:
    if email.to:
        return email.to
    customer = email.customer
    address = customer and (customer.email or (customer.user and customer.user.email))
    if not address:
        raise RecipientUnknown(f"no address yet for {email.key}")
    return address


class _Blank(dict):
    """Subject placeholders read the email's context; one it lacks reads as empty."""

    def __missing__(self, key: str) -> str:
        return ""


def _message(email: Email, to: str) -> EmailMultiAlternatives:
    context = {**email.context, "site_url": settings.SITE_URL, "recipient": to}
    for defaults in CONTEXT_DEFAULTS:
        for name, value in defaults(email).items():
            context.setdefault(name, value)
    text = render_to_string(f"emails/{email.template}.txt", context)
    html = render_to_string(f"emails/{email.template}.html", context)
    subject = SUBJECTS[email.template].format_map(_Blank(email.context))
    message = EmailMultiAlternatives(subject, text, to=[to])
    message.attach_alternative(html, "text/html")
    return message


def _claim(email_id: int) -> tuple[Email, EmailMultiAlternatives] | None:
    """pending -> sending, committed before the send; None when there is nothing to send."""
    with transaction.atomic():
        email = (
            Email.objects.select_for_update(of=("self",), no_key=True)
            .select_related("customer__user")
            .get(pk=email_id)
        )
        if email.status in (Email.Status.SENT, Email.Status.SKIPPED):
            return None
        if email.status == Email.Status.SENDING:
            raise PermanentError(
                f"email {email.key} was being sent when an attempt died; it may have gone out. "
                "Not resending (at most once): check the ESP's log, then resolve or discard."
            )
        relevant = STILL_RELEVANT.get(email.template)
        if relevant is not None and not relevant(email.context):
            email.status = Email.Status.SKIPPED
            email.save(update_fields=["status"])
            logger.info("email %s skipped: no longer relevant", email.key)
            return None
        message = _message(email, _recipient(email))
        email.status = Email.Status.SENDING
        email.save(update_fields=["status"])
    return email, message


def send(email_id: int) -> None:
    """Send one queued email at most once; a failed send returns it to pending for a retry."""
    claimed = _claim(email_id)
    if claimed is None:
        return
    email, message = claimed
    try:
        message.send()
    except Exception:
        # The ESP refused or was unreachable: nothing went out, so a retry may send it.
        Email.objects.filter(pk=email.pk, status=Email.Status.SENDING).update(
            status=Email.Status.PENDING
        )
        raise
    status = getattr(message, "anymail_status", None)
    Email.objects.filter(pk=email.pk).update(
        status=Email.Status.SENT,
        sent_at=timezone.now(),
        message_id=str(getattr(status, "message_id", None) or "")[:255],
    )
    logger.info("email %s sent", email.key)
