"""Staff console: every prebooking, filters by status and opening time, cancel and re-run."""

from __future__ import annotations

import json
import reprlib

from django.contrib import admin
from django.db.models import Q
from django.http import HttpRequest
from django.utils.html import format_html

from jobs.admin_tools import ReadOnlyAdminMixin, ReadOnlyInlineMixin
from jobs.console import ConsoleAction, ConsoleActionsMixin
from jobs.search import job_finder
from jobs.services import ActionResult
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


def _cancel(pk: int, actor: object, note: str) -> ActionResult:
    return (
        ActionResult(True) if services.cancel_prebooking(pk) else ActionResult(False, "not pending")
    )


def _rerun(pk: int, actor: object, note: str) -> ActionResult:
    if services.rerun_prebooking(pk):
        return ActionResult(True)
    return ActionResult(False, "still active, or booking window closed")


SEARCH_MAX_PREBOOKINGS = 50  # a member's prebookings whose armer jobs a search lists


@job_finder
def armers_of_prebookings(term: str) -> Q | None:
    """The console's job search: a prebooking id or a member's e-mail finds the armer jobs of
    those prebookings' instants (one armer serves every prebooking of an instant)."""
    if term.isdigit() and len(term) < 19:
        found = Prebooking.objects.filter(pk=int(term))
    elif "@" in term:
        found = Prebooking.objects.filter(owner__email__iexact=term).order_by("-pk")
    else:
        return None
    instants = set(found.values_list("opens_at", flat=True)[:SEARCH_MAX_PREBOOKINGS])
    keys = [
        services.armer_key(instant, replica)
        for instant in instants
        for replica in range(1, services.ARMERS_PER_INSTANT + 1)
    ]
    return Q(target__in=keys) if keys else None


RERUNNABLE = tuple(services.RERUNNABLE)
PREBOOKING_ACTIONS = [
    ConsoleAction(
        name="cancel",
        label="Cancel",
        description="Cancel selected pending prebookings",
        done="cancelled",
        run=_cancel,
        shown_for=(Prebooking.Status.PENDING,),
        applies=Q(status=Prebooking.Status.PENDING),
        confirm=True,
    ),
    ConsoleAction(
        name="rerun",
        label="Re-run",
        description="Re-run selected (failed, expired, cancelled)",
        done="scheduled again",
        run=_rerun,
        shown_for=RERUNNABLE,
        applies=Q(status__in=RERUNNABLE),
        primary=True,
    ),
]


@admin.register(Prebooking)
class PrebookingAdmin(ConsoleActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
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
    console_actions = PREBOOKING_ACTIONS
    console_permission = "prebooking.change_prebooking"
    console_permission_label = "Can change prebooking"

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

    def console_label(self, obj_id: int) -> str:
        return f"Prebooking #{obj_id}"

    def console_audit(
        self, request: HttpRequest, obj_id: int, action: ConsoleAction, note: str
    ) -> None:
        prebooking = Prebooking.objects.get(pk=obj_id)
        message = f"{action.done.capitalize()} by staff action." + (f" {note}" if note else "")
        self.log_change(request, prebooking, message)

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


@admin.register(DemoGymClass)
class DemoGymClassAdmin(admin.ModelAdmin):
    list_display = ["class_id", "opens_at", "starts_at", "capacity", "fail_next"]
    search_fields = ["class_id"]


@admin.register(DemoGymRequest)
class DemoGymRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["arrived", "class_id", "member", "status_code", "answer", "request_key"]
    list_filter = ["status_code"]
    search_fields = ["class_id", "member", "request_key"]
    show_full_result_count = False

    @admin.display(description="arrived (UTC)", ordering="arrived_at")
    def arrived(self, obj: DemoGymRequest) -> str:
        return obj.arrived_at.strftime("%Y-%m-%d %H:%M:%S.%f")


class AimHarderBoxInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = AimHarderBox
    fields = ["name", "slug", "boid", "rule", "hours_before", "days_before", "at_time", "time_zone"]
    readonly_fields = fields


@admin.register(AimHarderAccount)
class AimHarderAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Linked accounts: who and which boxes; the encrypted password is never shown."""

    list_display = ["email", "owner", "name", "linked_at", "last_login_at"]
    search_fields = ["email", "owner__username"]
    list_select_related = ["owner"]
    fields = ["owner", "email", "name", "member_id", "linked_at", "last_login_at"]
    readonly_fields = fields
    inlines = [AimHarderBoxInline]

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Staff with the permission may unlink an account (its boxes go with it).
        return admin.ModelAdmin.has_delete_permission(self, request, obj)


@admin.register(ClockEstimate)
class ClockEstimateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["host", "offset_ms", "rtt_ms", "uncertainty_ms", "probes", "measured_at"]
