"""Admin building blocks shared by every console table (jobs, Stripe events, prebookings)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.html import format_html


class EstimatedCountPaginator(Paginator):
    """Counts exactly up to 10,000 rows, then trusts PostgreSQL's estimate (as healthchecks does).

    COUNT(*) over millions of log rows takes seconds; ``pg_class.reltuples`` is free.
    """

    EXACT_LIMIT = 10_000

    @cached_property
    def count(self) -> int:
        query = self.object_list.query
        if query.where:  # a filtered list: exact, it is usually small and indexed
            return super().count
        table = self.object_list.model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table])
            row = cursor.fetchone()
        estimate = int(row[0]) if row else -1
        return super().count if estimate < self.EXACT_LIMIT else estimate


class ReadOnlyAdminMixin:
    """Log tables: no add, change or delete in the admin; state changes only through actions."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Viewing stays allowed; the change form renders every field read-only.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReadOnlyInlineMixin:
    """An inline log (attempts, actions, activity): shown, never added to, changed or deleted."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class StatusBadge:
    """A coloured pill for a status column, readable at a glance (colours in console.css)."""

    def __init__(self, field: str, *, short: bool = False) -> None:
        self.field = field
        self.short = short  # show the bare value, the long label on hover (narrow lists)

    def column(self) -> Callable[[object, object], str]:
        field, short = self.field, self.short

        @admin.display(description=field.replace("_", " ").capitalize(), ordering=field)
        def show(model_admin: object, obj: object) -> str:
            value = getattr(obj, field)
            label = getattr(obj, f"get_{field}_display", lambda: value)()
            return format_html(
                '<span class="status-pill status-{}" title="{}">{}</span>',
                value,
                label,
                value if short else label,
            )

        return show


class ConsoleMedia:
    css = {"all": ["console/console.css"]}
