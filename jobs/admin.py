"""The console staff live in: jobs, their attempts, and the dead letters of every type.

Log tables are read-only; state changes only through actions, which call the same service
functions the code uses, are gated by the ``jobs.replay_job`` permission, and are audited.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import NoReverseMatch, path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from django_q.models import Failure, OrmQ, Schedule, Success

from jobs import services
from jobs.admin_tools import (
    ConsoleMedia,
    EstimatedCountPaginator,
    ReadOnlyAdminMixin,
    StatusBadge,
)
from jobs.backend import task_named
from jobs.errors import JobNotRegistered
from jobs.models import DeadLetter, Job, JobAction, JobAttempt


def attempt_budget(job: Job) -> tuple[int, int]:
    """(attempts since the last replay, the type's limit): what a person compares.

    A replay grants a fresh budget by raising max_attempts to attempts + the type's limit, so
    the raw "2 / 6" read as six allowed when the policy says five.
    """
    try:
        limit = task_named(job.name).max_attempts
    except JobNotRegistered:
        return job.attempts, job.max_attempts
    earlier = max(0, job.max_attempts - limit)
    return job.attempts - earlier, limit


def cause_of_death(job: Job) -> str:
    """Why a dead job died, as it was: a permanent error, or its attempts ran out."""
    if job.status != Job.Status.DEAD:
        return ""
    used, limit = attempt_budget(job)
    if job.last_error.startswith("PermanentError"):
        return (
            f"permanent error after {used} attempt{'s' if used != 1 else ''}: retrying cannot help"
        )
    if used >= limit:
        return f"attempts exhausted ({used} of {limit} failed)"
    return "died without using its attempts"


def target_link(target: str) -> str:
    """A job's target ("app.model:pk") as a link to that row's admin page when there is one."""
    label, _, pk = target.partition(":")
    app_label, _, model_name = label.partition(".")
    if not (pk.isdigit() and model_name):
        return target
    try:
        url = reverse(f"admin:{app_label}_{model_name}_change", args=[pk])
    except NoReverseMatch:
        return target
    return format_html('<a href="{}">{}</a>', url, target)


JOB_BUTTONS = {
    # detail-page button -> (service call, what the message says was done)
    "replay": (lambda pk, user: services.replay(pk, actor=user), "queued for replay"),
    "resolve": (lambda pk, user: services.resolve(pk, actor=user), "marked resolved"),
    "discard": (lambda pk, user: services.discard(pk, actor=user), "discarded"),
}


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
        self._run(
            request,
            queryset,
            "queued for replay (refresh to see the outcome)",
            lambda pk: services.replay(pk, actor=request.user),
        )

    @admin.action(description="Replay, even if it succeeded (forced)", permissions=["replay"])
    def force_replay(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(
            request,
            queryset,
            "queued for replay (refresh to see the outcome)",
            lambda pk: services.replay(pk, actor=request.user, force=True),
        )

    @admin.action(description="Mark resolved (stop retrying, do not run)", permissions=["replay"])
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._run(
            request, queryset, "resolved", lambda pk: services.resolve(pk, actor=request.user)
        )

    @admin.action(description="Discard (stop retrying, do not run)", permissions=["replay"])
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
    change_form_template = "admin/jobs/job_change_form.html"
    list_filter = ["status", "name", "queue", "created_at"]
    search_fields = ["=id", "target", "name", "unique_key", "last_error"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    inlines = [JobAttemptInline, JobActionInline]
    fields = [
        "name",
        "status_badge",
        "death",
        "target_display",
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
        used, limit = attempt_budget(job)
        if used == job.attempts:
            return f"{used} / {limit}"
        return f"{used} / {limit} since the last replay ({job.attempts} in all)"

    @admin.display(description="Cause of death")
    def death(self, job: Job) -> str:
        return cause_of_death(job) or "-"

    @admin.display(description="Target", ordering="target")
    def target_display(self, job: Job) -> str:
        return target_link(job.target)

    def get_urls(self) -> list:
        info = self.model._meta.app_label, self.model._meta.model_name
        own = [
            path(
                "<int:job_id>/act/<slug:action>/",
                self.admin_site.admin_view(self.act_on_job),
                name=f"{info[0]}_{info[1]}_act",
            )
        ]
        return [*own, *super().get_urls()]

    @method_decorator(require_POST)
    def act_on_job(self, request: HttpRequest, job_id: int, action: str) -> HttpResponse:
        """The buttons of a job's page: one job, the same services as the list's actions."""
        if action not in JOB_BUTTONS:
            raise Http404("no such action")
        if not (self.has_view_permission(request) and self.has_replay_permission(request)):
            raise PermissionDenied
        job = get_object_or_404(Job, pk=job_id)
        call, done = JOB_BUTTONS[action]
        result = call(job.pk, request.user)
        if result.done:
            outcome = " Refresh this page to see the outcome." if action == "replay" else ""
            self.message_user(request, f"Job #{job.pk} {done}.{outcome}", messages.SUCCESS)
        else:
            self.message_user(
                request, f"Job #{job.pk} not {done}: {result.reason}.", messages.WARNING
            )
        # The job's own page: a replayed dead letter is no longer in the dead-letter list.
        return redirect("admin:jobs_job_change", job.pk)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        info = self.model._meta.app_label, self.model._meta.model_name
        extra = {
            "can_act": self.has_replay_permission(request),
            "act_url_name": f"admin:{info[0]}_{info[1]}_act",
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra)

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
    list_display = ["id", "name", "target_display", "death", "short_error", "attempts_display"]
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
    """Periodic tasks as declared in code (``every_minutes``): when each next runs."""

    list_display = ["name", "func", "schedule_type", "minutes", "cluster", "next_run"]
    fields = ["name", "func", "schedule_type", "minutes", "cluster", "next_run", "repeats"]
    readonly_fields = fields
