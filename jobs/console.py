"""Console actions declared once: each gives a list action, a page button and "all matching".

A ModelAdmin lists its :class:`ConsoleAction` objects in ``console_actions``; the mixin turns
each into the list's action (for the selected rows), a button on a row's page, and a
"... all matching this filter" button over the list. The three paths call the same service
function per row, say what they did in the same words, ask first when the action is one that
``confirm``s (with an optional note kept in the audit), and go back to the page they started
from. "All matching" shows the count, asks, acts on at most ``CONSOLE_BULK_CAP`` rows and
writes one :class:`~jobs.models.BulkAction` naming the filter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, QueryDict
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from jobs.models import BulkAction
from jobs.services import REPLAYABLE, ActionResult

NOTE_MAX_CHARS = 300
# Query parameters of a changelist that are not its filter: page, ordering, popups, errors.
NOT_FILTER = {"p", "o", "e", "_popup", "_to_field", "_changelist_filters"}


@dataclass(frozen=True)
class ConsoleAction:
    """One thing staff do to a row, and how the console offers it.

    ``run(pk, actor, note)`` calls the service; ``shown_for`` are the states (of
    ``console_state``) in which a row's page offers the button; ``applies`` narrows "all
    matching" to the rows the action can change, so its count says what will happen.
    """

    name: str
    label: str
    done: str
    run: Callable[[int, Any, str], ActionResult]
    shown_for: tuple[str, ...] = ()
    applies: Q | None = None
    confirm: bool = False
    bulk: bool = True
    primary: bool = False
    description: str = ""
    after: str = ""  # said after a single row's success, e.g. where to see the outcome

    @property
    def list_description(self) -> str:
        return self.description or f"{self.label} (selected)"

    @property
    def bulk_label(self) -> str:
        """ "Replay all", "Discard all": the button over a list or a group."""
        return f"{self.name.replace('_', ' ').capitalize()} all"


RowCall = Callable[[int, Any, str], ActionResult]
SETTLEABLE = ("dead", "retrying", "queued")


def job_actions(
    *,
    replay: Callable[[int, Any, str, bool], ActionResult],
    resolve: RowCall,
    discard: RowCall,
    job_status: str = "status",
    replay_description: str = "Replay selected jobs",
    force_description: str = "Replay, even if it succeeded (forced)",
    after: str = "Refresh this page to see the outcome.",
) -> list[ConsoleAction]:
    """Replay, forced replay, resolve and discard, for a list whose rows each have one job.

    `replay(pk, actor, note, force)`, `resolve` and `discard` act on one row; `job_status` is
    the lookup of the row's job status ("status" on jobs, "job__status" on Stripe events), so
    buttons and "all matching" follow the job, which alone holds the processing state.
    """
    replayable = tuple(REPLAYABLE)
    return [
        ConsoleAction(
            name="replay",
            label="Replay now",
            description=replay_description,
            done="queued for replay",
            after=after,
            run=lambda pk, actor, note: replay(pk, actor, note, False),
            shown_for=replayable,
            applies=Q(**{f"{job_status}__in": replayable}),
            primary=True,
        ),
        ConsoleAction(
            name="force_replay",
            label="Replay anyway (forced)",
            description=force_description,
            done="queued for replay",
            after=after,
            run=lambda pk, actor, note: replay(pk, actor, note, True),
            shown_for=("succeeded",),
            bulk=False,  # a succeeded job's effects happen again: one at a time, by choice
        ),
        ConsoleAction(
            name="resolve",
            label="Mark resolved",
            description="Mark resolved (stop retrying, do not run)",
            done="marked resolved",
            run=resolve,
            shown_for=SETTLEABLE,
            applies=Q(**{f"{job_status}__in": SETTLEABLE}),
            confirm=True,
        ),
        ConsoleAction(
            name="discard",
            label="Discard",
            description="Discard (stop retrying, do not run)",
            done="discarded",
            run=discard,
            shown_for=SETTLEABLE,
            applies=Q(**{f"{job_status}__in": SETTLEABLE}),
            confirm=True,
        ),
    ]


def summary(done: int, skipped: dict[str, int], verb: str) -> str:
    """ "3 discarded, 2 skipped: succeeded" """
    text = f"{done} {verb}"
    if skipped:
        text += ", " + ", ".join(f"{n} skipped: {why}" for why, n in skipped.items())
    return text


def safe_next(request: HttpRequest, fallback: str) -> str:
    """The page an action started from, when it is one of ours; else `fallback`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def filter_params(query: QueryDict) -> QueryDict:
    """A changelist's query string without paging and ordering: what its filter is."""
    params = query.copy()
    for name in NOT_FILTER:
        params.pop(name, None)
    return params


class ConsoleActionsMixin:
    """Turns ``console_actions`` into list actions, page buttons and "all matching" actions.

    Acting needs ``console_permission``; every path checks it, and the list and the page show
    no action to staff without it.
    """

    console_actions: Sequence[ConsoleAction] = ()
    console_permission = "jobs.replay_job"
    console_permission_label = "Can replay, resolve or discard jobs"
    other_actions: Sequence[Any] = ()  # list-only actions (method names) beside the declared
    change_list_template = "admin/console/change_list.html"
    change_form_template = "admin/console/change_form.html"
    # Lists whose every row is worth acting on (dead letters) offer "all matching" unfiltered.
    bulk_without_filter = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.actions = [*(self._list_action(a) for a in self.console_actions), *self.other_actions]

    # -- the hooks an admin may override ----------------------------------------------------

    def has_act_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(self.console_permission)

    def console_state(self, obj: Any) -> str:
        """The state the page buttons' ``shown_for`` is compared with."""
        return obj.status

    def console_label(self, obj_id: int) -> str:
        return f"{self.model._meta.verbose_name.capitalize()} #{obj_id}"

    def console_audit(self, request: HttpRequest, obj_id: int, action: ConsoleAction, note: str):
        """After a row was acted on; the jobs layer audits in its services, others log here."""

    # -- running -----------------------------------------------------------------------------

    def _action(self, name: str) -> ConsoleAction:
        for action in self.console_actions:
            if action.name == name:
                return action
        raise Http404("no such action")

    def _apply(
        self, request: HttpRequest, action: ConsoleAction, ids: Iterable[int], note: str
    ) -> tuple[int, dict[str, int]]:
        done, skipped = 0, {}
        for obj_id in ids:
            result = action.run(obj_id, request.user, note)
            if result.done:
                done += 1
                self.console_audit(request, obj_id, action, note)
            else:
                skipped[result.reason] = skipped.get(result.reason, 0) + 1
        return done, skipped

    def _tell(self, request: HttpRequest, action: ConsoleAction, done: int, skipped: dict) -> None:
        level = messages.SUCCESS if done else messages.WARNING
        self.message_user(request, summary(done, skipped, action.done), level)

    def _list_action(self, action: ConsoleAction) -> Callable:
        def run_selected(modeladmin: Any, request: HttpRequest, queryset: QuerySet):
            return modeladmin.act_on_selection(request, queryset, action)

        run_selected.__name__ = action.name.replace("-", "_")
        return admin.action(description=action.list_description, permissions=["act"])(run_selected)

    def act_on_selection(
        self, request: HttpRequest, queryset: QuerySet, action: ConsoleAction
    ) -> HttpResponse | None:
        """The list's action on the selected rows (asking first when the action confirms)."""
        cap = settings.CONSOLE_BULK_CAP
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:cap])
        if action.confirm and request.POST.get("confirmed") != "yes":
            return self._confirm_page(
                request,
                action,
                title=f"{action.label}: {len(ids)} selected?",
                count=len(ids),
                form_url=request.get_full_path(),
                hidden={
                    "action": request.POST.get("action", ""),
                    "select_across": request.POST.get("select_across", "0"),
                    "_selected_action": [str(pk) for pk in ids],
                },
                back=request.get_full_path(),
            )
        note = request.POST.get("note", "").strip()[:NOTE_MAX_CHARS]
        done, skipped = self._apply(request, action, ids, note)
        self._tell(request, action, done, skipped)
        return None  # the admin goes back to the list, its filter kept

    def act_on_object(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """A row's page button; back to the page it was pressed on."""
        chosen = self._action(action)
        if not (self.has_view_permission(request) and self.has_act_permission(request)):
            raise PermissionDenied
        if request.method not in ("GET", "POST") or (
            request.method == "GET" and not chosen.confirm
        ):
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404("no such row")
        label = self.console_label(obj.pk)
        info = self.model._meta.app_label, self.model._meta.model_name
        back = safe_next(request, reverse(f"admin:{info[0]}_{info[1]}_change", args=[obj.pk]))
        if chosen.confirm and request.POST.get("confirmed") != "yes":
            return self._confirm_page(
                request, chosen, title=f"{chosen.label}: {label}?", count=1, back=back, hidden={}
            )
        note = request.POST.get("note", "").strip()[:NOTE_MAX_CHARS]
        result = chosen.run(obj.pk, request.user, note)
        if result.done:
            self.console_audit(request, obj.pk, chosen, note)
            after = f" {chosen.after}" if chosen.after else ""
            self.message_user(request, f"{label} {chosen.done}.{after}", messages.SUCCESS)
        else:
            self.message_user(
                request, f"{label} not {chosen.done}: {result.reason}.", messages.WARNING
            )
        return redirect(back)

    def act_on_filter(self, request: HttpRequest, action: str) -> HttpResponse:
        """ "... all matching this filter": the count, a confirmation, the cap, one audit row."""
        chosen = self._action(action)
        if not chosen.bulk:
            raise Http404("no such action")
        if not (self.has_view_permission(request) and self.has_act_permission(request)):
            raise PermissionDenied
        info = self.model._meta.app_label, self.model._meta.model_name
        params = filter_params(request.GET)
        back = reverse(f"admin:{info[0]}_{info[1]}_changelist")
        if params:
            back += "?" + params.urlencode()
        try:
            matching = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:
            self.message_user(request, "That filter is not one this list knows.", messages.ERROR)
            return redirect(back)
        if chosen.applies is not None:
            matching = matching.filter(chosen.applies)
        cap = settings.CONSOLE_BULK_CAP
        # Counted no further than the cap: the page says "more than", and stays fast at millions.
        count = matching.order_by()[: cap + 1].count()
        if request.method != "POST" or request.POST.get("confirmed") != "yes":
            return self._confirm_page(
                request,
                chosen,
                title=f"{chosen.label}: all matching this filter?",
                count=count,
                cap=cap,
                filter_text=params.urlencode(),
                form_url=request.get_full_path(),
                back=back,
                hidden={},
            )
        note = request.POST.get("note", "").strip()[:NOTE_MAX_CHARS]
        bulk = BulkAction.objects.create(
            kind=chosen.name,
            model=f"{info[0]}.{info[1]}",
            filter=params.urlencode(),
            matched=count,
            actor=request.user,
            actor_name=request.user.get_username(),
            note=note,
        )
        row_note = f"bulk action #{bulk.pk}" + (f": {note}" if note else "")
        ids = list(matching.order_by("pk").values_list("pk", flat=True)[:cap])
        done, skipped = self._apply(request, chosen, ids, row_note[:NOTE_MAX_CHARS])
        BulkAction.objects.filter(pk=bulk.pk).update(acted=done, skipped=sum(skipped.values()))
        self._tell(request, chosen, done, skipped)
        if count > cap:
            self.message_user(
                request,
                f"More than {cap} matched: the first {cap} were acted on; run it again for the "
                "rest.",
                messages.WARNING,
            )
        return redirect(back)

    def _confirm_page(
        self,
        request: HttpRequest,
        action: ConsoleAction,
        *,
        title: str,
        count: int,
        back: str,
        hidden: dict,
        form_url: str = "",
        cap: int | None = None,
        filter_text: str = "",
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "action": action,
            "count": count,
            "cap": cap,
            "over_cap": cap is not None and count > cap,
            "filter_text": filter_text,
            "hidden": [
                (name, value)
                for name, values in hidden.items()
                for value in (values if isinstance(values, list) else [values])
            ],
            "form_url": form_url or request.get_full_path(),
            "next": back,
            "note_max": NOTE_MAX_CHARS,
        }
        return TemplateResponse(request, "admin/console/confirm.html", context)

    # -- wiring ------------------------------------------------------------------------------

    def get_urls(self) -> list:
        info = self.model._meta.app_label, self.model._meta.model_name
        own = [
            path(
                "<path:object_id>/act/<slug:action>/",
                self.admin_site.admin_view(self.act_on_object),
                name=f"{info[0]}_{info[1]}_act",
            ),
            path(
                "act-all/<slug:action>/",
                self.admin_site.admin_view(self.act_on_filter),
                name=f"{info[0]}_{info[1]}_act_all",
            ),
        ]
        return [*own, *super().get_urls()]

    def console_buttons(self, request: HttpRequest, obj: Any) -> list[dict]:
        """The page's buttons for `obj` in its current state, for staff who may act."""
        info = self.model._meta.app_label, self.model._meta.model_name
        state = self.console_state(obj)
        return [
            {
                "action": action,
                "url": reverse(f"admin:{info[0]}_{info[1]}_act", args=[obj.pk, action.name]),
            }
            for action in self.console_actions
            if state in action.shown_for
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        extra = {
            "can_act": self.has_act_permission(request),
            "act_permission_label": self.console_permission_label,
            "here": request.get_full_path(),
            **(extra_context or {}),
        }
        obj = self.get_object(request, object_id)
        if obj is not None and extra["can_act"]:
            extra["console_buttons"] = self.console_buttons(request, obj)
        return super().change_view(request, object_id, form_url, extra)

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        params = filter_params(request.GET)
        extra = dict(extra_context or {})
        if self.has_act_permission(request) and (params or self.bulk_without_filter):
            info = self.model._meta.app_label, self.model._meta.model_name
            query = ("?" + params.urlencode()) if params else ""
            extra["bulk_scope"] = "this filter" if params else "this list"
            extra["bulk_actions"] = [
                {
                    "action": action,
                    "url": reverse(f"admin:{info[0]}_{info[1]}_act_all", args=[action.name])
                    + query,
                }
                for action in self.console_actions
                if action.bulk
            ]
        return super().changelist_view(request, extra)
