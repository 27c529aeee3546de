"""The signed-in user's billing pages: /billing/, subscribe, top up, manage, after checkout.

Each action asks Stripe for a hosted page (billing.checkout) and redirects there; the webhook
brings the outcome back. When Stripe cannot be asked, the billing page answers with the
reason and nothing changes.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from billing import checkout
from billing.checkout import BillingUnavailable
from billing.entitlements import (
    FEATURE_LABELS,
    entitlements,
    features_of,
    max_pending_for,
    plans_with,
    requires_feature,
)
from billing.forms import PlanForm, TopUpForm
from billing.selectors import billing_summary, subscription_confirmed, top_up_confirmed
from core.security import rate_limit

# Each POST creates a session at Stripe: a person needs a few, a loop must not reach Stripe's
# account-wide rate limit for everybody else.
CHECKOUT_LIMIT = ("billing-checkout", "user", "BILLING_CHECKOUT_RATE")


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _plans() -> list[dict]:
    return [
        {
            "name": plan,
            "features": [FEATURE_LABELS.get(f, f) for f in features_of(plan)],
            "max_pending": max_pending_for(plan),
        }
        for plan in settings.BILLING_PLANS
    ]


def _page(
    request: HttpRequest,
    *,
    error: str = "",
    status: int = 200,
    top_up_form: TopUpForm | None = None,
) -> HttpResponse:
    customer = checkout.customer_of(request.user)
    current = entitlements(request.user.pk)
    context = {
        **billing_summary(customer),
        "customer": customer,
        "current": current,
        "plans": _plans(),
        "pending_limit": max_pending_for(current["plan"]),
        "configured": checkout.configured() and bool(settings.BILLING_PLANS),
        "has_key": checkout.configured(),
        "debug": settings.DEBUG,
        "error": error,
        "top_up_form": top_up_form or TopUpForm(),
        "wallet_plans": plans_with("wallet"),
        "top_up_currency": settings.BILLING_TOP_UP_CURRENCY,
    }
    return render(request, "billing/account.html", context, status=status)


@login_required
def billing_page(request: HttpRequest) -> HttpResponse:
    """The user's plan, card, invoices, wallet and payment trouble, with what they can do."""
    return _page(request)


@login_required
@require_POST
@rate_limit(*CHECKOUT_LIMIT)
def subscribe(request: HttpRequest) -> HttpResponse:
    """Start Checkout for the chosen plan (one subscription per user: changes go by the portal)."""
    form = PlanForm(request.POST)
    if not form.is_valid():
        return _page(request, error="Choose one of the plans listed.", status=400)
    if subscription_confirmed(request.user.pk):
        return _page(
            request,
            error="You already have a subscription: change or cancel it with Manage billing.",
            status=409,
        )
    try:
        url = checkout.start_subscription(
            request.user, form.cleaned_data["plan"], _base_url(request)
        )
    except BillingUnavailable as error:
        return _page(request, error=str(error), status=error.status)
    return redirect(url)


@require_POST
@requires_feature("wallet")
@rate_limit(*CHECKOUT_LIMIT)
def top_up(request: HttpRequest) -> HttpResponse:
    """Start Checkout (mode payment) for a wallet top-up within the configured bounds."""
    form = TopUpForm(request.POST)
    if not form.is_valid():
        return _page(request, error="Check the amount.", status=400, top_up_form=form)
    try:
        url = checkout.start_top_up(request.user, form.cleaned_data["amount"], _base_url(request))
    except BillingUnavailable as error:
        return _page(request, error=str(error), status=error.status, top_up_form=form)
    return redirect(url)


@login_required
@require_http_methods(["GET", "POST"])
@rate_limit(*CHECKOUT_LIMIT)
def portal(request: HttpRequest) -> HttpResponse:
    """Send the user to Stripe's Billing Portal (card, invoices, cancel); e-mails link here.

    Only a POST (CSRF-checked, rate limited) creates a session at Stripe. The GET that an
    e-mail's link makes, or a page an attacker embeds, shows the billing page and its
    "Manage billing" button: it calls out to nobody.
    """
    if request.method != "POST":
        return _page(request)
    try:
        url = checkout.portal_url(request.user, request.build_absolute_uri("/billing/"))
    except BillingUnavailable as error:
        return _page(request, error=str(error), status=error.status)
    if url is None:
        return _page(request, error="Nothing to manage yet: subscribe to a plan first.", status=404)
    return redirect(url)


@login_required
def success(request: HttpRequest) -> HttpResponse:
    """Back from Checkout: "confirming..." (refreshing itself) until the webhook has arrived."""
    kind = request.GET.get("kind", "subscription")
    session_id = request.GET.get("session_id", "")
    if kind == "top_up":
        confirmed = top_up_confirmed(checkout.customer_of(request.user), session_id)
    else:
        kind = "subscription"
        confirmed = subscription_confirmed(request.user.pk)
    current = entitlements(request.user.pk)
    context = {
        "kind": kind,
        "confirmed": confirmed,
        "current": current,
        "pending_limit": max_pending_for(current["plan"]),
        "debug": settings.DEBUG,
    }
    return render(request, "billing/success.html", context)
