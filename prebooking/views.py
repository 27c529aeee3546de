"""The user's prebooking pages: list, new, detail, cancel (always scoped to the owner)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from prebooking import services
from prebooking.forms import PrebookingForm
from prebooking.models import Prebooking

UPCOMING = [Prebooking.Status.PENDING, Prebooking.Status.FIRING]

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


def list_context(owner) -> dict:
    """What /prebookings/ shows: the page and the fragment it polls render from this alone."""
    mine = Prebooking.objects.filter(owner=owner)
    upcoming = mine.filter(status__in=UPCOMING).order_by("opens_at", "id")
    # A cancelled prebooking whose opening is still ahead is not "past".
    cancelled = mine.filter(status=Prebooking.Status.CANCELLED, opens_at__gt=timezone.now())
    past = (
        mine.exclude(status__in=UPCOMING)
        .exclude(pk__in=cancelled.values("pk"))
        .order_by("-opens_at", "-id")[:100]
    )
    return {
        "upcoming": upcoming,
        "cancelled": cancelled.order_by("opens_at", "id")[:100],
        "past": [(p, outcome(p)) for p in past],
    }


def detail_context(prebooking: Prebooking) -> dict:
    """What a prebooking's page shows; its polled fragment renders from this alone too."""
    return {
        "prebooking": prebooking,
        "outcome": outcome(prebooking),
        "class_starts_at": _instant(prebooking.payload.get("class_starts_at")),
        "sent_words": sent_words(prebooking),
    }


def sent_words(prebooking: Prebooking) -> str:
    """When the request left, against the opening: before it, when aimed at the gym's clock."""
    if prebooking.lateness_ms is None:
        return ""
    lateness = prebooking.lateness_ms
    side = "after" if lateness >= 0 else "before"
    words = f"{abs(lateness):.2f} ms {side} opening by our clock"
    if ((prebooking.response or {}).get("timing") or {}).get("targeted"):
        words += ", timed to arrive just after opening by the gym's clock"
    return words


def _instant(value: object) -> datetime | None:
    """An ISO 8601 instant from a payload; None for anything else (a page never breaks on it)."""
    try:
        moment = datetime.fromisoformat(str(value)) if value else None
        if moment is not None:
            moment.astimezone(UTC)  # 9999-12-31T23:59-10:00 is no instant Python holds
    except (ValueError, OverflowError):
        return None
    return moment if moment is None or timezone.is_aware(moment) else None


def live_fragment(request: HttpRequest, template: str, context: dict) -> JsonResponse:
    """A page's live region as JSON: the same template the page includes, from the same context."""
    return JsonResponse({"html": render_to_string(template, context, request=request)})


@login_required
def prebooking_list(request: HttpRequest) -> HttpResponse:
    return render(request, "prebooking/list.html", list_context(request.user))


@login_required
@require_GET
def prebooking_status(request: HttpRequest) -> JsonResponse:
    """The list's live region, for the page to poll while a prebooking in it is due."""
    return live_fragment(request, "prebooking/_list.html", list_context(request.user))


@login_required
@require_GET
def prebooking_detail_status(request: HttpRequest, prebooking_id: int) -> JsonResponse:
    """A prebooking's card, for its page to poll while the prebooking is due."""
    prebooking = get_object_or_404(Prebooking, pk=prebooking_id, owner=request.user)
    return live_fragment(request, "prebooking/_detail.html", detail_context(prebooking))


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
    return render(request, "prebooking/detail.html", detail_context(prebooking))


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
