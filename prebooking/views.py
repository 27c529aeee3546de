"""The user's prebooking pages: list, new, detail, cancel (always scoped to the owner)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from prebooking import services
from prebooking.forms import PrebookingForm
from prebooking.models import Prebooking

UPCOMING = [Prebooking.Status.PENDING, Prebooking.Status.FIRING]


@login_required
def prebooking_list(request: HttpRequest) -> HttpResponse:
    mine = Prebooking.objects.filter(owner=request.user)
    upcoming = mine.filter(status__in=UPCOMING).order_by("opens_at", "id")
    past = mine.exclude(status__in=UPCOMING).order_by("-opens_at", "-id")[:100]
    return render(request, "prebooking/list.html", {"upcoming": upcoming, "past": past})


@login_required
@require_http_methods(["GET", "POST"])
def prebooking_new(request: HttpRequest) -> HttpResponse:
    form = PrebookingForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        prebooking = services.create_prebooking(
            request.user,
            form.cleaned_data["provider"],
            form.payload(),
            form.cleaned_data["opens_at"],
        )
        messages.success(request, "Prebooking saved: we will send it the moment booking opens.")
        return redirect("prebooking:detail", prebooking_id=prebooking.pk)
    return render(request, "prebooking/new.html", {"form": form})


@login_required
def prebooking_detail(request: HttpRequest, prebooking_id: int) -> HttpResponse:
    prebooking = get_object_or_404(Prebooking, pk=prebooking_id, owner=request.user)
    return render(request, "prebooking/detail.html", {"prebooking": prebooking})


@login_required
@require_POST
def prebooking_cancel(request: HttpRequest, prebooking_id: int) -> HttpResponse:
    prebooking = get_object_or_404(Prebooking, pk=prebooking_id, owner=request.user)
    if services.cancel_prebooking(prebooking.pk):
        messages.success(request, f"Prebooking for {prebooking.payload.get('class_id')} cancelled.")
    else:
        messages.error(request, "Too late to cancel: it is no longer pending.")
    return redirect("prebooking:list")
