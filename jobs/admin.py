"""The console staff live in: jobs, their attempts, and the dead letters of every type.

Log tables are read-only; state changes only through actions (declared once in
``JOB_ACTIONS``, offered by jobs.console as list actions, page buttons and "all matching"), which
call the same service functions the code uses, are gated by the ``jobs.replay_job`` permission,
and are audited.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django_q.models import Failure, OrmQ, Schedule, Success

from jobs import services
from jobs.admin_tools import (
    ConsoleMedia,
    EstimatedCountPaginator,
    ReadOnlyAdminMixin,
    ReadOnlyInlineMixin,
    StatusBadge,
)
from jobs.backend import task_named
from jobs.console import ConsoleActionsMixin, job_actions
from jobs.errors import JobNotRegistered
from jobs.models import BulkAction, DeadLetter, Job, JobAction, JobAttempt
from jobs.search import job_match
from jobs.selectors import queues

SEARCH_MAX_RESULTS = 1000  # newest matching jobs a search lists


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


JOB_ACTIONS = job_actions(
    replay=lambda pk, actor, note, force: services.replay(pk, actor=actor, force=force, note=note),
    resolve=lambda pk, actor, note: services.resolve(pk, actor=actor, note=note),
    discard=lambda pk, actor, note: services.discard(pk, actor=actor, note=note),
)


class JobAttemptInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = JobAttempt
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


class JobActionInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = JobAction
    fields = ["at", "kind", "actor_name", "forced", "status_before", "note"]
    readonly_fields = fields
    verbose_name_plural = "Staff actions"


class JobTypeFilter(admin.SimpleListFilter):
    """Jobs of one type. The choices are the types among the newest jobs (and the dead ones):
    listing every distinct name would read every row of a table of millions on each page."""

    title = "job type"
    parameter_name = "name"
    SAMPLE = 10_000

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        newest = Job.objects.order_by("-pk").values_list("name", flat=True)[: self.SAMPLE]
        dead = Job.objects.filter(status=Job.Status.DEAD).values_list("name", flat=True)
        names = set(newest) | set(dead.order_by("name").distinct())
        return [(name, name) for name in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset if self.value() is None else queryset.filter(name=self.value())


class QueueFilter(admin.SimpleListFilter):
    """Jobs of one queue: the queues the backend declares and the clusters serve."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [(queue, queue) for queue in queues()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset if self.value() is None else queryset.filter(queue=self.value())


class ErrorGroupFilter(admin.SimpleListFilter):
    """Dead letters by the fingerprint of the error they died of, the largest groups first."""

    title = "error group"
    parameter_name = "fingerprint"
    LIMIT = 20

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [
            (group["fingerprint"], group["fingerprint"] or "(no error)")
            for group in error_groups(self.LIMIT)
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() is None:
            return queryset
        return queryset.filter(error_fingerprint=self.value())


def error_groups(limit: int) -> list[dict]:
    """The dead letters' error groups, largest first: fingerprint, count, job types."""
    rows = (
        Job.objects.filter(status=Job.Status.DEAD)
        .values("error_fingerprint")
        .annotate(count=Count("pk"), types=ArrayAgg("name", distinct=True))
        .order_by("-count", "error_fingerprint")[:limit]
    )
    return [
        {"fingerprint": row["error_fingerprint"], "count": row["count"], "types": row["types"]}
        for row in rows
    ]


@admin.register(Job)
class JobAdmin(ConsoleActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "target",
        "status_badge",
        "attempts_display",
        "next_run",
        "created_at",
        "finished_at",
        "short_error",
    ]
    list_display_links = ["id", "name"]
    change_form_template = "admin/jobs/job_change_form.html"
    list_filter = ["status", JobTypeFilter, QueueFilter, "created_at"]
    search_fields = ["=id"]  # the box itself; get_search_results says what it finds
    search_help_text = (
        "A job id, its target or unique key, an id the job is about (a Stripe event or object "
        "id, a prebooking id), an e-mail address, or part of the error (3 characters or more)."
    )
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    inlines = [JobAttemptInline, JobActionInline]
    console_actions = JOB_ACTIONS
    fields = [
        "name",
        "status_badge",
        "death",
        "target_display",
        "queue",
        "kwargs_pretty",
        "attempts_display",
        "next_run",
        "lease",
        "worker",
        "timeout",
        "unique_key",
        "last_error",
        "error_fingerprint",
        "created_at",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields

    status_badge = StatusBadge("status").column()
    Media = ConsoleMedia

    def console_label(self, obj_id: int) -> str:
        return f"Job #{obj_id}"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # The newest matches by id first, then the list's own queries over those ids: given the
        # OR of several indexes, the planner would otherwise walk the whole list in order.
        newest = queryset.filter(job_match(term)).order_by("-pk").values_list("pk", flat=True)
        return queryset.filter(pk__in=list(newest[:SEARCH_MAX_RESULTS])), False

    @admin.display(description="Attempts")
    def attempts_display(self, job: Job) -> str:
        used, limit = attempt_budget(job)
        if used == job.attempts:
            return f"{used} / {limit}"
        return f"{used} / {limit} since the last replay ({job.attempts} in all)"

    @admin.display(description="Next run", ordering="run_at")
    def next_run(self, job: Job):
        """When a waiting job runs next; none for a settled or dead one (run_at is stale)."""
        return job.run_at if job.status in Job.WAITING else "-"

    @admin.display(description="Lease expires at")
    def lease(self, job: Job):
        """A running attempt's lease; none for any other state."""
        return job.lease_expires_at or "-"

    @admin.display(description="Cause of death")
    def death(self, job: Job) -> str:
        return cause_of_death(job) or "-"

    @admin.display(description="Target", ordering="target")
    def target_display(self, job: Job) -> str:
        return target_link(job.target)

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
    list_filter = [ErrorGroupFilter, "name", "queue", "finished_at"]
    date_hierarchy = "finished_at"
    other_actions = ["replay_all_of_type"]
    bulk_without_filter = True

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(status=Job.Status.DEAD)

    def get_object(self, request: HttpRequest, object_id: str, from_field=None):
        # A replayed or discarded letter keeps its page: the action stays where it started.
        return Job.objects.filter(pk=object_id).first() if object_id.isdigit() else None

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        extra = dict(extra_context or {})
        if "fingerprint" not in request.GET:
            groups = error_groups(ErrorGroupFilter.LIMIT)
            if self.has_act_permission(request):
                for group in groups:
                    query = urlencode({"fingerprint": group["fingerprint"]})
                    group["bulk"] = [
                        (
                            action.bulk_label,
                            reverse("admin:jobs_deadletter_act_all", args=[action.name])
                            + f"?{query}",
                        )
                        for action in self.console_actions
                        if action.bulk
                    ]
            extra["error_groups"] = groups
        return super().changelist_view(request, extra)

    @admin.action(description="Replay all dead jobs of the selected types", permissions=["act"])
    def replay_all_of_type(self, request: HttpRequest, queryset: QuerySet) -> None:
        names = set(queryset.values_list("name", flat=True))
        every = Job.objects.filter(status=Job.Status.DEAD, name__in=names)
        self.act_on_selection(request, every, self._action("replay"))


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


@admin.register(BulkAction)
class BulkActionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit of "... all matching this filter": who, what, which filter, how many."""

    list_display = ["at", "kind", "model", "filter", "matched", "acted", "skipped", "actor_name"]
    list_display += ["note"]
    list_filter = ["kind", "model"]
    fields = list_display
    readonly_fields = fields
