"""The user's prebooking pages: list, new, detail, cancel (always scoped to the owner)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from prebooking import services
from prebooking.forms import PrebookingForm
from prebooking.models import Prebooking

UPCOMING = [Prebooking.Status.PENDING, Prebooking.Status.FIRING]
STATUS_POLL_MAX = 100  # prebookings one status poll may ask about

# The gym's error codes in words (the demo gym's and the usual HTTP gym API's).
GYM_ERRORS = {
    "class_full": "the class is full",
    "already_booked": "you were already booked on this class",
    "unknown_class": "the gym does not know this class",
    "not_open": "booking had not opened yet at the gym",
    "unavailable": "the gym was unavailable",
}


def outcome(prebooking: Prebooking) -> str:
    """What happened to a prebooking, in a sentence a member reads (never a raw dict)."""
    status = prebooking.status
    if status == Prebooking.Status.PENDING:
        return "Waiting for booking to open."
    if status == Prebooking.Status.FIRING:
        return "Sending the booking now…"
    if status == Prebooking.Status.CANCELLED:
        return "Cancelled: nothing was sent."
    response = prebooking.response if isinstance(prebooking.response, dict) else {}
    answer = response.get("answer") if isinstance(response.get("answer"), dict) else {}
    if status == Prebooking.Status.SUCCEEDED:
        booking = answer.get("booking")
        return f"Booked (booking {booking})." if booking else "Booked."
    code = answer.get("error") or response.get("reason") or ""
    why = GYM_ERRORS.get(str(code), str(code)) or prebooking.error or "no reason given"
    if status == Prebooking.Status.EXPIRED:
        return f"Not sent: {prebooking.error or why}."
    http = response.get("status_code")
    return f"Not booked: {why}" + (f" (the gym answered {http})." if http else ".")


@login_required
def prebooking_list(request: HttpRequest) -> HttpResponse:
    mine = Prebooking.objects.filter(owner=request.user)
    upcoming = mine.filter(status__in=UPCOMING).order_by("opens_at", "id")
    # A cancelled prebooking whose opening is still ahead is not "past".
    cancelled = mine.filter(status=Prebooking.Status.CANCELLED, opens_at__gt=timezone.now())
    past = (
        mine.exclude(status__in=UPCOMING)
        .exclude(pk__in=cancelled.values("pk"))
        .order_by("-opens_at", "-id")[:100]
    )
    context = {
        "upcoming": upcoming,
        "cancelled": cancelled.order_by("opens_at", "id")[:100],
        "past": [(p, outcome(p)) for p in past],
    }
    return render(request, "prebooking/list.html", context)


@login_required
@require_GET
def prebooking_status(request: HttpRequest) -> JsonResponse:
    """The state of some of the user's own prebookings (`?ids=1,2`), for the pages to poll."""
    ids = [part for part in request.GET.get("ids", "").split(",") if part.isdigit()]
    found = Prebooking.objects.filter(
        owner=request.user, pk__in=[int(pk) for pk in ids[:STATUS_POLL_MAX] if len(pk) < 19]
    )
    return JsonResponse(
        {
            "prebookings": [
                {
                    "id": p.pk,
                    "status": p.status,
                    "label": p.get_status_display(),
                    "final": p.is_final,
                    "outcome": outcome(p),
                }
                for p in found
            ]
        }
    )


@login_required
@require_http_methods(["GET", "POST"])
def prebooking_new(request: HttpRequest) -> HttpResponse:
    form = PrebookingForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            prebooking = services.create_prebooking(
                request.user,
                form.cleaned_data["provider"],
                form.payload(),
                form.cleaned_data["opens_at"],
            )
        except services.PendingLimitReached as refused:
            form.add_error(None, str(refused))
            return render(request, "prebooking/new.html", {"form": form}, status=409)
        messages.success(request, "Prebooking saved: we will send it the moment booking opens.")
        return redirect("prebooking:detail", prebooking_id=prebooking.pk)
    return render(request, "prebooking/new.html", {"form": form})


@login_required
def prebooking_detail(request: HttpRequest, prebooking_id: int) -> HttpResponse:
    prebooking = get_object_or_404(Prebooking, pk=prebooking_id, owner=request.user)
    context = {"prebooking": prebooking, "outcome": outcome(prebooking)}
    return render(request, "prebooking/detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def prebooking_cancel(request: HttpRequest, prebooking_id: int) -> HttpResponse:
    """GET asks to confirm; POST cancels (only a pending prebooking)."""
    prebooking = get_object_or_404(Prebooking, pk=prebooking_id, owner=request.user)
    if request.method == "GET":
        return render(request, "prebooking/cancel.html", {"prebooking": prebooking})
    if services.cancel_prebooking(prebooking.pk):
        messages.success(request, f"Prebooking for {prebooking.payload.get('class_id')} cancelled.")
    else:
        messages.error(request, "Too late to cancel: it is no longer pending.")
    return redirect("prebooking:list")
