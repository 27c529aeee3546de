"""A Django email backend that keeps every message in the database (OutboxMail) instead of
sending it: development's outbox, listed under the admin with its links clickable."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction

from outbox.models import OutboxMail

logger = logging.getLogger(__name__)
MAX_PART_CHARS = 1_000_000  # a runaway template must not fill the database


class EmailBackend(BaseEmailBackend):
    """Store each message; return how many were stored (as sending backends return sent)."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        stored = 0
        for message in email_messages:
            html = next(
                (
                    str(content)
                    for content, mimetype in getattr(message, "alternatives", [])
                    if mimetype == "text/html"
                ),
                str(message.body) if message.content_subtype == "html" else "",
            )
            text = "" if message.content_subtype == "html" else str(message.body)
            with transaction.atomic():
                mail = OutboxMail.objects.create(
                    from_email=str(message.from_email or "")[:320],
                    to="\n".join(message.recipients()),
                    subject=str(message.subject or "")[:998],
                    text=text[:MAX_PART_CHARS],
                    html=html[:MAX_PART_CHARS],
                )
            logger.info("mail %r to %s kept in the outbox (#%s)", mail.subject, mail.to, mail.pk)
            stored += 1
        return stored
