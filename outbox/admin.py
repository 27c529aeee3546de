"""The outbox in the admin: read-only, newest first, the text with its links clickable and the
HTML version one click away."""

from __future__ import annotations

import re

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import urlize
from django.urls import path, reverse
from django.utils.html import format_html

from jobs.admin_tools import ReadOnlyAdminMixin
from outbox.models import OutboxMail

FIRST_LINK = re.compile(r"https?://[^\s<>\"']+")


@admin.register(OutboxMail)
class OutboxMailAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "to", "subject", "links"]
    list_display_links = ["created_at", "subject"]
    search_fields = ["to", "subject"]
    fields = ["created_at", "from_email", "to", "subject", "text_with_links", "html_version"]
    readonly_fields = fields

    @admin.display(description="Text")
    def text_with_links(self, mail: OutboxMail) -> str:
        # The template filter escapes the text and marks only the links it makes safe.
        return format_html('<pre class="mail-text">{}</pre>', urlize(mail.text, autoescape=True))

    @admin.display(description="First link")
    def links(self, mail: OutboxMail) -> str:
        # The first link of a mail is what a developer came for (activate, reset, receipt).
        found = FIRST_LINK.search(mail.text)
        return format_html('<a href="{}">{}</a>', found[0], found[0]) if found else "-"

    @admin.display(description="HTML version")
    def html_version(self, mail: OutboxMail) -> str:
        if not mail.html:
            return "-"
        url = reverse("admin:outbox_outboxmail_html", args=[mail.pk])
        return format_html('<a href="{}">open the HTML version</a>', url)

    def get_urls(self) -> list:
        own = [
            path(
                "<int:mail_id>/html/",
                self.admin_site.admin_view(self.html_view),
                name="outbox_outboxmail_html",
            )
        ]
        return [*own, *super().get_urls()]

    def html_view(self, request: HttpRequest, mail_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        mail = get_object_or_404(OutboxMail, pk=mail_id)
        response = HttpResponse(mail.html, content_type="text/html; charset=utf-8")
        # A mail's HTML runs nothing here: no scripts, no forms, no same-origin access.
        response["Content-Security-Policy"] = "sandbox allow-popups allow-popups-to-escape-sandbox"
        return response
