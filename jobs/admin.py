"""The console staff live in: jobs, their attempts, and the dead letters of every type.

Log tables are read-only; state changes only through actions, which call the same service
functions the code uses, are gated by the ``jobs.replay_job`` permission, and are audited.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django_q.models import Failure, OrmQ, Schedule, Success

from jobs import services
from jobs.admin_tools import (
    ConsoleMedia,
    EstimatedCountPaginator,
    ReadOnlyAdminMixin,
    StatusBadge,
)
from jobs.models import DeadLetter, Job, JobAction, JobAttempt


class JobAttemptInline(admin.TabularInline):
    model = JobAttempt
    extra = 0
    can_delete = False
    ordering = ["-number"]
    fields = ["number", "outcome", "started_at", "duration_ms", "worker", "error", "traceback_pre"]
    readonly_fields = fields
    verbose_name_plural = "Attempts (newest first)"

    @admin.display(description="Traceback")
    def traceback_pre(self, attempt: JobAttempt) -> str:
        if not attempt.traceback:
            return "-"
        return format_html(
            '<details><summary>show</summary><pre class="traceback">{}</pre></details>',
            attempt.traceback,
        )

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class JobActionInline(admin.TabularInline):
    model = JobAction
    extra = 0
    can_delete = False
    fields = ["at", "kind", "actor_name", "forced", "status_before", "note"]
    readonly_fields = fields
    verbose_name_plural = "Staff actions"

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class JobActionsMixin:
    """Replay / resolve / discard, for staff holding ``jobs.replay_job``."""

    actions = ["replay", "force_replay", "mark_resolved", "discard"]

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("jobs.replay_job")

    def _run(self, request: HttpRequest, queryset: QuerySet, verb: str, call) -> None:
        done, skipped = 0, {}
        for job_id in queryset.values_list("pk", flat=True):
            result = call(job_id)
            if result.done:
                done += 1
            else:
                skipped[result.reason] = skipped.get(result.reason, 0) + 1
        summary = f"{done} {verb}"
        if skipped:
            summary += ", " + ", ".join(f"{n} skipped: {why}" for why, n in skipped.items())
        self.message_user(request, summary, messages.SUCCESS if done else messages.WARNING)

    @admin.action(description="Replay selected jobs", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(request, queryset, "replayed", lambda pk: services.replay(pk, actor=request.user))

    @admin.action(description="Replay, even if it succeeded (forced)", permissions=["replay"])
    def force_replay(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(
            request,
            queryset,
            "replayed",
            lambda pk: services.replay(pk, actor=request.user, force=True),
        )

    @admin.action(description="Mark resolved (stop retrying, do not run)", permissions=["replay"])
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(
            request, queryset, "resolved", lambda pk: services.resolve(pk, actor=request.user)
        )

    @admin.action(description="Discard (ignore: stop retrying, do not run)", permissions=["replay"])
    def discard(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(
            request, queryset, "discarded", lambda pk: services.discard(pk, actor=request.user)
        )


@admin.register(Job)
class JobAdmin(JobActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "target",
        "status_badge",
        "attempts_display",
        "run_at",
        "created_at",
        "finished_at",
        "short_error",
    ]
    list_display_links = ["id", "name"]
    list_filter = ["status", "name", "queue", "created_at"]
    search_fields = ["=id", "target", "name", "unique_key", "last_error"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    inlines = [JobAttemptInline, JobActionInline]
    fields = [
        "name",
        "status_badge",
        "target",
        "queue",
        "kwargs_pretty",
        "attempts_display",
        "run_at",
        "lease_expires_at",
        "worker",
        "timeout",
        "unique_key",
        "last_error",
        "created_at",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields

    status_badge = StatusBadge("status").column()
    Media = ConsoleMedia

    @admin.display(description="Attempts")
    def attempts_display(self, job: Job) -> str:
        return f"{job.attempts} / {job.max_attempts}"

    @admin.display(description="Arguments")
    def kwargs_pretty(self, job: Job) -> str:
        return format_html("<pre>{}</pre>", json.dumps(job.kwargs, indent=2, sort_keys=True))

    @admin.display(description="Last error")
    def short_error(self, job: Job) -> str:
        return (job.last_error[:80] + "…") if len(job.last_error) > 80 else job.last_error


@admin.register(DeadLetter)
class DeadLetterAdmin(JobAdmin):
    """Every dead job of every type in one list: what the 3 a.m. visit starts from."""

    # Every row is dead: the columns say what it was, why it died and when.
    list_display = ["id", "name", "target", "status_badge", "short_error", "attempts_display"]
    list_display += ["finished_at"]
    list_filter = ["name", "queue", "finished_at"]
    date_hierarchy = "finished_at"
    actions = ["replay", "replay_all_of_type", "mark_resolved", "discard"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(status=Job.Status.DEAD)

    @admin.action(description="Replay all dead jobs of the selected types", permissions=["replay"])
    def replay_all_of_type(self, request: HttpRequest, queryset: QuerySet) -> None:
        names = set(queryset.values_list("name", flat=True))
        every = Job.objects.filter(status=Job.Status.DEAD, name__in=names)
        self._run(request, every, "replayed", lambda pk: services.replay(pk, actor=request.user))


@admin.register(JobAttempt)
class JobAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The execution log: every attempt of every job."""

    list_display = [
        "id",
        "job_link",
        "number",
        "outcome_badge",
        "started_at",
        "duration_ms",
        "worker",
    ]
    list_filter = ["outcome", "job__name", "started_at"]
    search_fields = ["=job__id", "job__target", "error"]
    list_select_related = ["job"]
    date_hierarchy = "started_at"
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    fields = ["job_link", "number", "outcome", "started_at", "finished_at", "duration_ms"]
    fields += ["worker", "error", "traceback_pre"]
    readonly_fields = fields

    outcome_badge = StatusBadge("outcome").column()
    Media = ConsoleMedia

    @admin.display(description="Job")
    def job_link(self, attempt: JobAttempt) -> str:
        return format_html('<a href="../../job/{}/change/">{}</a>', attempt.job_id, attempt.job)

    @admin.display(description="Traceback")
    def traceback_pre(self, attempt: JobAttempt) -> str:
        return format_html("<pre>{}</pre>", attempt.traceback or "-")


# One console: the jobs layer's tables are the queue and its log. django-q2's task tables are
# not used (jobs.broker claims Job rows), so their admin pages go; its schedules stay, read-only,
# because they are how periodic jobs are declared (jobs.periodic, kept after each migrate).
for _model in (OrmQ, Success, Failure):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
if admin.site.is_registered(Schedule):
    admin.site.unregister(Schedule)


@admin.register(Schedule)
class ScheduleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Periodic jobs as declared in code (``@periodic``): when each next runs."""

    list_display = ["name", "func", "schedule_type", "minutes", "cluster", "next_run"]
    fields = ["name", "func", "schedule_type", "minutes", "cluster", "next_run", "repeats"]
    readonly_fields = fields
