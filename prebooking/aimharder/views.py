"""The AimHarder pages: linked accounts and box rules, the class picker, cancelling at the gym.

Thin views: parse, call one service of prebooking.aimharder.services, render. Every
query is scoped to the signed-in member: another member's account or prebooking is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_ratelimit import ALL

from core.security import rate_limit
from prebooking.aimharder import services as aimharder_services
from prebooking.aimharder.forms import (
    BoxRuleForm,
    ClassDayForm,
    LinkAccountForm,
    PickForm,
)
from prebooking.models import AimHarderAccount, AimHarderBox, Prebooking
from prebooking.providers.aimharder.client import AimHarderError
from prebooking.services import PendingLimitReached


def _accounts_page(request: HttpRequest, form: LinkAccountForm, status: int = 200):
    accounts = AimHarderAccount.objects.filter(owner=request.user).prefetch_related("boxes")
    rows = [
        (
            account,
            [
                (box, BoxRuleForm(instance=box, prefix=f"box{box.pk}"))
                for box in account.boxes.all()
            ],
        )
        for account in accounts
    ]
    return render(
        request,
        "prebooking/aimharder/accounts.html",
        {"form": form, "accounts": rows},
        status=status,
    )


@login_required
@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
# Each POST is a login attempt at AimHarder: our form must not be a way to guess passwords
# (and AimHarder locks an account after a few failures).
@rate_limit("aimharder-link", "user", "AIMHARDER_LINK_RATE")
def accounts(request: HttpRequest) -> HttpResponse:
    """Linked AimHarder accounts; POST links one (checked by logging in at AimHarder)."""
    form = LinkAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            account = aimharder_services.link_account(
                request.user, form.cleaned_data["email"], form.cleaned_data["password"]
            )
        except AimHarderError as exc:
            form.add_error(None, exc.reason)
        else:
            messages.success(
                request, f"Linked {account.email}: {account.boxes.count()} box(es) found."
            )
            return redirect("prebooking:accounts")
    return _accounts_page(request, form, status=400 if form.errors else 200)


@login_required
@require_POST
def unlink(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(AimHarderAccount, pk=account_id, owner=request.user)
    cancelled = aimharder_services.unlink_account(request.user, account.pk)
    note = f" and {cancelled} pending prebooking(s) cancelled" if cancelled else ""
    messages.success(request, f"Unlinked {account.email}: its credentials are deleted{note}.")
    return redirect("prebooking:accounts")


@login_required
@require_POST
def box_rule(request: HttpRequest, box_id: int) -> HttpResponse:
    box = get_object_or_404(AimHarderBox, pk=box_id, account__owner=request.user)
    form = BoxRuleForm(request.POST, instance=box, prefix=f"box{box.pk}")
    if form.is_valid():
        form.save()
        messages.success(request, f"Booking rule of {box.name or box.slug} saved.")
    else:
        errors = "; ".join(f"{e}" for errors in form.errors.values() for e in errors)
        messages.error(request, f"Rule not saved: {errors}")
    return redirect("prebooking:accounts")


def _listing(request: HttpRequest, form: ClassDayForm) -> tuple[list, str]:
    box, day = form.cleaned_data["box"], form.cleaned_data["day"]
    rows = []
    try:
        for gym_class in aimharder_services.day_classes(box, day):
            starts = aimharder_services.class_starts_at(box, day, gym_class)
            rows.append((gym_class, starts, aimharder_services.opening_instant(box, starts)))
    except AimHarderError as exc:
        return [], exc.reason
    return rows, ""


# Each listing may call AimHarder (a cache miss): a loop over days must not hammer the gym.
CLASSES_LIMIT = ("aimharder-classes", "user", "AIMHARDER_CLASSES_RATE", ALL)


@login_required
@rate_limit(*CLASSES_LIMIT)
def classes(request: HttpRequest) -> HttpResponse:
    """Pick a box and a day; the day's classes from AimHarder, each with its opening instant."""
    if not AimHarderBox.objects.filter(account__owner=request.user).exists():
        messages.info(request, "Link your AimHarder account first.")
        return redirect("prebooking:accounts")
    form = ClassDayForm(request.GET or None, owner=request.user)
    rows, problem = [], ""
    if request.GET and form.is_valid():
        rows, problem = _listing(request, form)
    return render(
        request,
        "prebooking/aimharder/classes.html",
        {"form": form, "rows": rows, "problem": problem, "listed": bool(request.GET)},
    )


@login_required
@require_http_methods(["GET", "POST"])
@rate_limit(*CLASSES_LIMIT)
def pick(request: HttpRequest) -> HttpResponse:
    """One class: its details, the opening instant (editable) and "prebook it"."""
    form = PickForm(request.POST or request.GET, owner=request.user)
    if not form.is_valid():
        return render(request, "prebooking/aimharder/pick.html", {"form": form}, status=400)
    box, day = form.cleaned_data["box"], form.cleaned_data["day"]
    try:
        listed = aimharder_services.day_classes(box, day)
    except AimHarderError as exc:
        form.add_error(None, exc.reason)
        return render(request, "prebooking/aimharder/pick.html", {"form": form}, status=502)
    gym_class = next((c for c in listed if c.session_id == form.cleaned_data["session_id"]), None)
    if gym_class is None:
        form.add_error(None, "AimHarder does not list this class that day any more.")
        return render(request, "prebooking/aimharder/pick.html", {"form": form}, status=400)
    try:
        starts = aimharder_services.class_starts_at(box, day, gym_class)
        by_rule = aimharder_services.opening_instant(box, starts)
    except AimHarderError as exc:
        form.add_error(None, exc.reason)
        return render(request, "prebooking/aimharder/pick.html", {"form": form}, status=400)
    context = {
        "form": form,
        "box": box,
        "gym_class": gym_class,
        "starts": starts,
        "by_rule": by_rule,
    }
    if request.method == "GET":
        context["form"] = PickForm(
            initial={
                **form.cleaned_data,
                "box": box.pk,
                "opens_at": by_rule.replace(tzinfo=None),
                "insist": True,
            },
            owner=request.user,
        )
        return render(request, "prebooking/aimharder/pick.html", context)
    opens_at = form.cleaned_data["opens_at"] or by_rule
    if not form.check_opening(opens_at, starts):
        return render(request, "prebooking/aimharder/pick.html", context, status=400)
    payload = aimharder_services.prebooking_payload(
        request.user, box, day, gym_class, form.cleaned_data["insist"]
    )
    try:
        prebooking = aimharder_services.create_prebooking(request.user, payload, opens_at)
    except PendingLimitReached as refused:
        form.add_error(None, str(refused))
        return render(request, "prebooking/aimharder/pick.html", context, status=409)
    messages.success(
        request, f"Prebooking saved: we book {gym_class.name} the moment booking opens."
    )
    return redirect("prebooking:detail", prebooking_id=prebooking.pk)


@login_required
@require_POST
def cancel_booking(request: HttpRequest, prebooking_id: int) -> HttpResponse:
    """Cancel at the gym what a prebooking booked; a late cancellation asks to confirm first."""
    prebooking = get_object_or_404(
        Prebooking, pk=prebooking_id, owner=request.user, provider="aimharder"
    )
    late = request.POST.get("late") == "1"
    try:
        outcome = aimharder_services.cancel_booking(prebooking, late=late)
    except AimHarderError as exc:
        messages.error(request, f"Not cancelled: {exc.reason}")
        return redirect("prebooking:detail", prebooking_id=prebooking.pk)
    if outcome == aimharder_services.NEEDS_CONFIRMATION:
        return render(
            request, "prebooking/aimharder/cancel_confirm.html", {"prebooking": prebooking}
        )
    messages.success(request, f"Your place in {prebooking.payload.get('class_name')} is cancelled.")
    return redirect("prebooking:detail", prebooking_id=prebooking.pk)
