"""Staff console: every prebooking, filters by status and opening time, cancel and re-run."""

from __future__ import annotations

import json
import reprlib

from django.contrib import admin, messages
from django.utils.html import format_html

from prebooking import services
from prebooking.models import (
    AimHarderAccount,
    AimHarderBox,
    ClockEstimate,
    DemoGymClass,
    DemoGymRequest,
    Prebooking,
)


def _pretty(value, limit: int = 4000) -> str:
    try:
        text = json.dumps(value, indent=2, sort_keys=True) if value is not None else "-"
    except (RecursionError, ValueError, TypeError):
        # A gym's answer nested past what json.dumps can walk: a depth-limited summary instead.
        text = reprlib.Repr(maxlevel=8, maxstring=limit, maxother=200).repr(value)
    if len(text) > limit:
        text = text[:limit] + "\n… (cut)"
    return format_html('<pre class="prebooking-json">{}</pre>', text)


@admin.register(Prebooking)
class PrebookingAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "owner",
        "provider",
        "class_id",
        "opens_at",
        "status_badge",
        "lateness",
        "attempts",
    ]
    list_filter = ["status", ("opens_at", admin.DateFieldListFilter), "provider"]
    search_fields = ["owner__username", "owner__email", "payload__class_id"]
    list_select_related = ["owner"]
    date_hierarchy = "opens_at"
    show_full_result_count = False
    actions = ["cancel_selected", "rerun_selected"]

    class Media:
        css = {"all": ["css/prebooking-admin.css"]}

    fields = [
        "owner",
        "provider",
        "status",
        "opens_at",
        "created_at",
        "armed_at",
        "fired_at",
        "lateness_ms",
        "attempted_at",
        "finished_at",
        "attempts",
        "error",
        "payload_pretty",
        "response_pretty",
    ]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # read-only: state changes only through the actions

    def has_operate_permission(self, request) -> bool:
        return request.user.has_perm("prebooking.change_prebooking")

    @admin.display(description="class")
    def class_id(self, obj: Prebooking) -> str:
        return obj.payload.get("class_id", "") if isinstance(obj.payload, dict) else "?"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Prebooking) -> str:
        return format_html(
            '<b class="prebooking-status prebooking-status-{}">● {}</b>',
            obj.status,
            obj.get_status_display(),
        )

    @admin.display(description="lateness", ordering="lateness_ms")
    def lateness(self, obj: Prebooking) -> str:
        return "-" if obj.lateness_ms is None else f"{obj.lateness_ms:.1f} ms"

    @admin.display(description="payload")
    def payload_pretty(self, obj: Prebooking) -> str:
        return _pretty(obj.payload)

    @admin.display(description="provider response")
    def response_pretty(self, obj: Prebooking) -> str:
        return _pretty(obj.response)

    @admin.action(description="Cancel selected pending prebookings", permissions=["operate"])
    def cancel_selected(self, request, queryset) -> None:
        done = skipped = 0
        for prebooking in queryset:
            if services.cancel_prebooking(prebooking.pk):
                done += 1
                self.log_change(request, prebooking, "Cancelled by staff action.")
            else:
                skipped += 1
        self.message_user(
            request, f"{done} cancelled, {skipped} skipped: not pending.", messages.SUCCESS
        )

    @admin.action(
        description="Re-run selected (failed, expired, cancelled)", permissions=["operate"]
    )
    def rerun_selected(self, request, queryset) -> None:
        done = skipped = 0
        for prebooking in queryset:
            if services.rerun_prebooking(prebooking.pk):
                done += 1
                self.log_change(request, prebooking, "Re-run by staff action.")
            else:
                skipped += 1
        self.message_user(
            request,
            f"{done} scheduled again, {skipped} skipped: still active, or booking window closed.",
            messages.SUCCESS if done else messages.WARNING,
        )


@admin.register(DemoGymClass)
class DemoGymClassAdmin(admin.ModelAdmin):
    list_display = ["class_id", "opens_at", "starts_at", "capacity", "fail_next"]
    search_fields = ["class_id"]


@admin.register(DemoGymRequest)
class DemoGymRequestAdmin(admin.ModelAdmin):
    list_display = ["arrived", "class_id", "member", "status_code", "answer", "request_key"]
    list_filter = ["status_code"]
    search_fields = ["class_id", "member", "request_key"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="arrived (UTC)", ordering="arrived_at")
    def arrived(self, obj: DemoGymRequest) -> str:
        return obj.arrived_at.strftime("%Y-%m-%d %H:%M:%S.%f")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AimHarderBoxInline(admin.TabularInline):
    model = AimHarderBox
    fields = ["name", "slug", "boid", "rule", "hours_before", "days_before", "at_time", "time_zone"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AimHarderAccount)
class AimHarderAccountAdmin(ReadOnlyAdmin):
    """Linked accounts: who and which boxes; the encrypted password is never shown."""

    list_display = ["email", "owner", "name", "linked_at", "last_login_at"]
    search_fields = ["email", "owner__username"]
    list_select_related = ["owner"]
    fields = ["owner", "email", "name", "member_id", "linked_at", "last_login_at"]
    readonly_fields = fields
    inlines = [AimHarderBoxInline]


@admin.register(ClockEstimate)
class ClockEstimateAdmin(ReadOnlyAdmin):
    list_display = ["host", "offset_ms", "rtt_ms", "uncertainty_ms", "probes", "measured_at"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
