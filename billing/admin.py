"""Billing in the admin: Stripe events (with replay) and the state their handlers keep.

Everything is read-only: Stripe is the source of these rows, and the only changes staff make
to events are replay, mark resolved and ignore, gated by ``billing.replay_stripeevent`` and
audited by the jobs layer.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from django.contrib import admin, messages
from django.db.models import Func, Q, QuerySet, Sum, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Left, Length
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from billing import services
from billing.models import (
    PAYLOAD_EMAIL,
    ActivityLog,
    Customer,
    DunningCase,
    Invoice,
    Payment,
    PaymentMethod,
    StripeEvent,
    Subscription,
    WalletTransaction,
)
from billing.services import PROCESS_EVENT_JOB
from jobs.admin import cause_of_death
from jobs.admin_tools import (
    ConsoleMedia,
    EstimatedCountPaginator,
    ReadOnlyAdminMixin,
    ReadOnlyInlineMixin,
    StatusBadge,
)
from jobs.console import ConsoleActionsMixin, job_actions
from jobs.models import Job, JobAction, JobAttempt
from jobs.search import MIN_TEXT_CHARS, error_text, job_finder

PAYLOAD_PREVIEW_CHARS = 4000
# pg_trgm extracts no trigram from fewer characters: a shorter part of an id could not use the
# trigram index, and would match nearly every event anyway. Whole ids match at any length.
SEARCH_MIN_PARTIAL = MIN_TEXT_CHARS
SEARCH_MAX_CUSTOMERS = 50  # customers an e-mail fragment may stand for
SEARCH_MAX_RESULTS = 1000  # newest matching events a search lists

# One word for one action: "discard", as on jobs (the event's status stays "ignored", which
# unhandled types also get; its page says "discarded").
EVENT_ACTIONS = job_actions(
    replay=lambda pk, actor, note, force: services.replay_event(
        pk, actor=actor, force=force, note=note
    ),
    resolve=lambda pk, actor, note: services.resolve_event(pk, actor=actor, note=note),
    discard=lambda pk, actor, note: services.ignore_event(pk, actor=actor, note=note),
    job_status="job__status",
    replay_description="Replay selected events (failed or dead)",
    force_description="Replay, even if processed (forced)",
    after="This page shows the outcome when a worker has run it (it refreshes until then).",
)


def event_match(term: str) -> Q:
    """Events `term` may mean: an event id or part of one, an object or customer id, an e-mail
    address (in the payload, or a customer's, or part of a customer's) or error text.

    Each branch is served by an index at a million events: the trigram index on stripe_id
    (partial ids), the payload expression indexes (object and customer ids, e-mail), the
    customers' e-mail trigram index, whose few matches become customer-id lookups, and the jobs'
    error-text trigram index.
    """
    if "@" in term:
        customers = list(
            Customer.objects.filter(email__iregex=re.escape(term)).values_list(
                "stripe_id", flat=True
            )[:SEARCH_MAX_CUSTOMERS]
        )
        match = Q(customer_id__in=customers) | Q(object_id__in=customers)
        match |= Q(payload_email=term.lower())
    else:
        match = Q(stripe_id=term) | Q(object_id=term) | Q(customer_id=term)
        if len(term) >= SEARCH_MIN_PARTIAL:
            match |= Q(stripe_id__contains=term)
    if len(term) >= MIN_TEXT_CHARS:
        failing = Job.objects.filter(error_text(term), name=PROCESS_EVENT_JOB).order_by("-pk")
        job_ids = list(failing.values_list("pk", flat=True)[:SEARCH_MAX_RESULTS])
        if job_ids:
            match |= Q(job_id__in=job_ids)
    return match


def matching_events(queryset: QuerySet, term: str) -> list[int]:
    """The ids of the newest events (at most SEARCH_MAX_RESULTS) `term` finds in `queryset`."""
    found = queryset.alias(
        object_id=KT("payload__data__object__id"),
        customer_id=KT("payload__data__object__customer"),
        payload_email=PAYLOAD_EMAIL,
    )
    # The newest matches by id, found through the indexes above; the list's other queries
    # (count, date drill-down) then run on those ids. Given the OR itself, PostgreSQL
    # misjudged how many rows match and walked the received_at index.
    newest = found.filter(event_match(term)).order_by("-pk").values_list("pk", flat=True)
    return list(newest[:SEARCH_MAX_RESULTS])


def event_status(event: StripeEvent) -> str:
    """The event's outcome as staff say it: "discarded" when staff discarded its job (the
    event's own status says "ignored", as for a type without a handler)."""
    discarded = event.job is not None and event.job.status == Job.Status.DISCARDED
    return "discarded" if discarded else event.status


@job_finder
def jobs_of_events(term: str) -> Q | None:
    """The console's job search: the jobs of the events a Stripe id or an e-mail finds."""
    if not ("@" in term or re.fullmatch(r"[a-z]{2,10}_\w+", term)):
        return None
    ids = matching_events(StripeEvent.objects.all(), term)
    job_ids = StripeEvent.objects.filter(pk__in=ids, job__isnull=False).values_list(
        "job_id", flat=True
    )
    return Q(pk__in=list(job_ids))


@admin.register(StripeEvent)
class StripeEventAdmin(ConsoleActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Events with their attempts and payload; replay, resolve or ignore through the jobs layer,
    which audits every action; staff without ``billing.replay_stripeevent`` only look."""

    list_display = [
        "stripe_id",
        "type",
        "status_badge",
        "attempts",
        "received_at",
        "processed_at",
        "next_attempt_at",
        "error_summary",
    ]
    # Attempts, errors and the next attempt are the job's: one join, not a query per row.
    list_select_related = ["job"]
    list_filter = ["status", "job__status", "type", "livemode", "received_at"]
    search_fields = ["=stripe_id"]
    search_help_text = (
        "An event id or part of it (3 characters or more), the id of the object it is about, "
        "a customer id, an e-mail address (in the event, or part of a customer's), or part of "
        "the error. Lists the newest 1,000 matches."
    )
    date_hierarchy = "received_at"
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    console_actions = EVENT_ACTIONS
    console_permission = "billing.replay_stripeevent"
    console_permission_label = "Can replay Stripe events"
    other_actions = ["replay_all_dead_of_type"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "stripe_id",
                    "type",
                    "status_badge",
                    "cause_of_death",
                    "attempts",
                    "next_attempt_at",
                    "received_at",
                    "processed_at",
                    "job_link",
                ]
            },
        ),
        ("What went wrong", {"fields": ["last_error", "latest_traceback"]}),
        ("History", {"fields": ["attempt_timeline", "staff_actions"]}),
        ("Payload", {"fields": ["payload_pretty", "api_version", "livemode", "created"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    change_form_template = "admin/billing/stripeevent/change_form.html"
    Media = ConsoleMedia

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Pages never decode a payload in Python: whatever an event holds (nesting, size), the
        # database pretty-prints and cuts it (_payload_text), so every page stays bounded.
        return super().get_queryset(request).select_related("job").defer("payload")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        if len(term) < SEARCH_MIN_PARTIAL:
            self.message_user(
                request,
                f"“{term}” is matched as a whole id only: parts of ids need "
                f"{SEARCH_MIN_PARTIAL} characters or more (the search index works on "
                f"{SEARCH_MIN_PARTIAL}-letter pieces, and shorter parts match nearly everything).",
                messages.INFO,
            )
        return queryset.filter(pk__in=matching_events(queryset, term)), False

    def get_urls(self) -> list:
        own = [
            path(
                "<int:event_id>/payload.json",
                self.admin_site.admin_view(self.payload_json),
                name="billing_stripeevent_payload",
            ),
        ]
        return [*own, *super().get_urls()]

    def payload_json(self, request: HttpRequest, event_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            return JsonResponse({"error": "forbidden"}, status=403)
        text = _payload_text(event_id, limit=None)
        if text is None:
            raise Http404("no such event")
        return HttpResponse(text[0], content_type="application/json")

    def console_label(self, obj_id: int) -> str:
        stripe_id = StripeEvent.objects.filter(pk=obj_id).values_list("stripe_id", flat=True)
        return f"Event {stripe_id.first() or obj_id}"

    def console_state(self, event: StripeEvent) -> str:
        return event.job.status if event.job is not None else ""

    @admin.display(description="Status", ordering="status")
    def status_badge(self, event: StripeEvent) -> str:
        word = event_status(event)
        return format_html(
            '<span class="status-pill status-{}" title="{}">{}</span>',
            word,
            event.get_status_display() if word == event.status else word,
            word,
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        event = StripeEvent.objects.filter(pk=object_id).only("type", "status", "job_id").first()
        extra = dict(extra_context or {})
        if event is not None:
            extra["event_status"] = event_status(event)
            extra["latest_action"], extra["waiting"] = self._latest_action(event)
            extra["dead_of_type"] = StripeEvent.objects.filter(
                status=StripeEvent.Status.DEAD, type=event.type
            ).count()
            extra["dead_of_type_url"] = (
                reverse("admin:billing_stripeevent_changelist")
                + f"?status__exact=dead&type__exact={quote(event.type)}"
            )
        return super().change_view(request, object_id, form_url, extra)

    def _latest_action(self, event: StripeEvent) -> tuple[str, bool]:
        """What came of the newest staff action on the event, and whether it is still pending."""
        action = JobAction.objects.filter(job_id=event.job_id).first()
        if action is None:
            return "", False
        attempts = sorted(self._attempts(event), key=lambda a: a.started_at)
        outcome = _action_outcome(action, attempts)
        when = f"{action.at:%Y-%m-%d %H:%M:%S}"
        summary = f"{action.get_kind_display()} by {action.actor_name} at {when} UTC: {outcome}"
        return summary, outcome == "waiting for a worker" or outcome.endswith(": running")

    @admin.display(description="Cause of death")
    def cause_of_death(self, event: StripeEvent) -> str:
        job = event.job
        return (cause_of_death(job) if job is not None else "") or "-"

    @admin.display(description="Attempts")
    def attempts(self, event: StripeEvent) -> int | str:
        return event.job.attempts if event.job is not None else "-"

    @admin.display(description="Next attempt")
    def next_attempt_at(self, event: StripeEvent):
        job = event.job
        return job.run_at if job is not None and job.status in Job.WAITING else None

    @admin.display(description="Processed at")
    def processed_at(self, event: StripeEvent):
        """When its job settled it (processed, ignored or resolved); a dead event's time of
        death is its job's, on the job's page."""
        job = event.job
        settled = job is not None and event.status in StripeEvent.SETTLED
        return job.finished_at if settled else None

    @admin.display(description="Last error")
    def last_error(self, event: StripeEvent) -> str:
        return event.job.last_error if event.job is not None else ""

    @admin.display(description="Payload")
    def payload_pretty(self, event: StripeEvent) -> str:
        text, length = _payload_text(event.pk, limit=PAYLOAD_PREVIEW_CHARS) or ("", 0)
        more = ""
        if length > PAYLOAD_PREVIEW_CHARS:
            url = reverse("admin:billing_stripeevent_payload", args=[event.pk])
            more = format_html('<a href="{}">the whole payload ({} characters)</a>', url, length)
            text += "\n…"
        return format_html(
            '<details class="payload" open><summary>JSON</summary><pre>{}</pre>{}</details>',
            text,
            more,
        )

    @admin.display(description="Last error")
    def error_summary(self, event: StripeEvent) -> str:
        error = self.last_error(event)
        return (error[:70] + "…") if len(error) > 70 else error

    def _attempts(self, event: StripeEvent) -> list[JobAttempt]:
        return list(
            JobAttempt.objects.filter(job_id=event.job_id).order_by("-started_at", "-id")[:50]
        )

    @admin.display(description="Processing job")
    def job_link(self, event: StripeEvent) -> str:
        job = event.job
        if job is None:
            return "- (pruned)"
        url = reverse("admin:jobs_job_change", args=[job.pk])
        return format_html('<a href="{}">job #{}</a>: {}', url, job.pk, job.get_status_display())

    @admin.display(description="Traceback (latest failed attempt)")
    def latest_traceback(self, event: StripeEvent) -> str:
        failed = next((a for a in self._attempts(event) if a.traceback or a.error), None)
        if failed is None:
            return "-"
        return format_html(
            '<p>Attempt {} at {} UTC on {}</p><pre class="traceback">{}</pre>',
            failed.number,
            f"{failed.started_at:%Y-%m-%d %H:%M:%S}",
            failed.worker or "?",
            failed.traceback or failed.error,
        )

    @admin.display(description="Attempts (newest first)")
    def attempt_timeline(self, event: StripeEvent) -> str:
        attempts = self._attempts(event)
        if not attempts:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><span class='status-pill status-{}'>{}</span></td><td>{}</td>"
            "<td>{}</td><td>{}</td>"
            "<td><details><summary>{}</summary><pre class='traceback'>{}</pre></details></td></tr>",
            (
                (
                    a.number,
                    a.outcome,
                    a.get_outcome_display(),
                    f"{a.started_at:%Y-%m-%d %H:%M:%S}",
                    a.duration_ms if a.duration_ms is not None else "",
                    a.worker,
                    a.error[:120] or "-",
                    a.traceback or "-",
                )
                for a in attempts
            ),
        )
        return format_html(
            "<table class='timeline'><tr><th>#</th><th>outcome</th><th>started (UTC)</th>"
            "<th>ms</th><th>worker</th><th>error</th></tr>{}</table>",
            rows,
        )

    @admin.display(description="Staff actions (newest first)")
    def staff_actions(self, event: StripeEvent) -> str:
        actions = list(JobAction.objects.filter(job_id=event.job_id))
        if not actions:
            return "-"
        attempts = sorted(self._attempts(event), key=lambda a: a.started_at)
        return format_html(
            "<table class='timeline'><tr><th>when (UTC)</th><th>who</th><th>what</th>"
            "<th>status before</th><th>outcome</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        f"{a.at:%Y-%m-%d %H:%M:%S}",
                        a.actor_name,
                        a.get_kind_display(),
                        " (forced)" if a.forced else "",
                        a.status_before,
                        _action_outcome(a, attempts),
                    )
                    for a in actions
                ),
            ),
        )

    @admin.action(
        description="Replay all dead events of the selected events' types", permissions=["act"]
    )
    def replay_all_dead_of_type(self, request: HttpRequest, queryset: QuerySet) -> None:
        types = set(queryset.values_list("type", flat=True))
        dead = StripeEvent.objects.filter(status=StripeEvent.Status.DEAD, type__in=types)
        self.act_on_selection(request, dead, self._action("replay"))


def _payload_text(event_id: int, *, limit: int | None) -> tuple[str, int] | None:
    """(the event's payload pretty-printed by PostgreSQL, cut at `limit` characters, its whole
    length), or None for no such event.

    PostgreSQL's jsonb_pretty works in C on the stored form, in time proportional to its size;
    Python's json.dumps recursed once per level, and a deep payload took the page (and, with
    DEBUG on, the error page) down with it.
    """
    pretty = Func("payload", function="jsonb_pretty", output_field=TextField())
    row = (
        StripeEvent.objects.filter(pk=event_id)
        .annotate(length=Length(pretty), head=Left(pretty, limit) if limit else pretty)
        .values_list("head", "length")
        .first()
    )
    return (row[0], row[1]) if row else None


def _action_outcome(action: JobAction, attempts: list[JobAttempt]) -> str:
    """What came of a staff action: a replay's next attempt, or that nothing was run."""
    if action.kind != JobAction.Kind.REPLAY:
        return "settled without running"
    after = next((a for a in attempts if a.started_at >= action.at), None)
    if after is None:
        return "waiting for a worker"
    return f"attempt {after.number}: {after.get_outcome_display().lower()}"


class ActivityInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = ActivityLog
    ordering = ["-created_at", "-id"]
    fields = ["created_at", "stripe_event_id", "object_type", "object_id", "action", "change"]
    readonly_fields = fields
    verbose_name_plural = "Activity (newest first)"

    @admin.display(description="Before -> after")
    def change(self, log: ActivityLog) -> str:
        return _change(log)


def _change(log: ActivityLog) -> str:
    keys = sorted(set(log.before) | set(log.after))
    return "; ".join(
        f"{key}: {log.before.get(key, '-')} -> {log.after.get(key, '-')}" for key in keys
    )


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["stripe_id", "email", "name", "user", "deleted", "wallet_balance"]
    list_filter = ["deleted"]
    search_fields = ["=stripe_id", "email", "user__username", "user__email"]
    list_select_related = ["user"]
    inlines = [ActivityInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(balance=Sum("wallet__amount"))

    @admin.display(description="Wallet (minor units)", ordering="balance")
    def wallet_balance(self, customer: Customer) -> int:
        return customer.balance or 0


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["stripe_id", "customer", "status", "plan", "current_period_end"]
    list_display += ["cancel_at_period_end", "canceled_at"]
    list_filter = ["status", "plan", "cancel_at_period_end"]
    search_fields = ["=stripe_id", "=customer__stripe_id", "customer__email"]
    list_select_related = ["customer"]


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["stripe_id", "customer", "status", "amount_due", "amount_paid", "currency"]
    list_display += ["attempt_count"]
    list_filter = ["status", "currency"]
    search_fields = ["=stripe_id", "=customer__stripe_id", "customer__email"]
    list_select_related = ["customer"]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["stripe_id", "charge_id", "customer", "amount", "amount_refunded"]
    list_display += ["currency", "status"]
    list_filter = ["status", "currency"]
    search_fields = ["=stripe_id", "=charge_id", "=customer__stripe_id"]
    list_select_related = ["customer"]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["stripe_id", "customer", "brand", "last4", "attached"]
    list_filter = ["attached", "brand"]
    search_fields = ["=stripe_id", "=customer__stripe_id"]
    list_select_related = ["customer"]


@admin.register(WalletTransaction)
class WalletTransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "customer", "kind", "amount", "currency", "source"]
    list_filter = ["kind", "currency"]
    search_fields = ["=source", "=customer__stripe_id", "=payment_intent_id", "=charge_id"]
    list_select_related = ["customer"]


@admin.register(DunningCase)
class DunningCaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["invoice", "subscription", "status_badge", "opened_at", "closed_at"]
    list_display += ["closed_by"]
    list_filter = ["status"]
    search_fields = ["=invoice__stripe_id", "=subscription__stripe_id"]
    list_select_related = ["invoice", "subscription"]
    status_badge = StatusBadge("status").column()
    Media = ConsoleMedia


@admin.register(ActivityLog)
class ActivityLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "customer", "action", "object_type", "object_id", "change"]
    list_display += ["stripe_event_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["=stripe_event_id", "=object_id", "=customer__stripe_id"]
    list_select_related = ["customer"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    @admin.display(description="Before -> after")
    def change(self, log: ActivityLog) -> str:
        return _change(log)
