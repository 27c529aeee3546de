"""The e-mail queue in the console: read-only, like every log table."""

from __future__ import annotations

from django.contrib import admin

from jobs.admin_tools import ConsoleMedia, ReadOnlyAdminMixin, StatusBadge
from mail.models import Email


@admin.register(Email)
class EmailAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "template", "to", "customer", "status_badge", "sent_at", "key"]
    list_filter = ["status", "template"]
    search_fields = ["key", "to", "=customer__stripe_id", "customer__email"]
    list_select_related = ["customer"]
    status_badge = StatusBadge("status").column()
    Media = ConsoleMedia
