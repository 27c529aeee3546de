"""Dunning: recover a failed invoice by email on day 0, 3 and 7, cancel on day 10.

The emails escalate: day 0 "payment failed", day 3 "reminder", day 7 (the last reminder)
"final notice" with the cancellation date; each says the amount, the attempts so far and
where to pay or change the card.

A case opens on the first `invoice.payment_failed` of an invoice with a subscription. Each
later step is a job with a run_at (the jobs layer delivers it when due, surviving restarts)
and a unique key (it exists once). A payment closes the case; a step that runs after that
finds the case closed and does nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db.models import QuerySet
from django.utils import dateformat, timezone

from billing.audit import audit
from billing.emails import money
from billing.entitlements import invalidate_entitlements
from billing.models import DunningCase, Invoice, StripeEvent, Subscription
from billing.stripe_api import client, is_missing
from jobs.backend import task_named
from jobs.models import Job
from jobs.services import discard
from mail.services import queue_email

DUNNING_STEP_JOB = "billing.tasks.dunning_step"
SETTLED = ("paid", "void", "uncollectible")
ENDED = ("canceled", "unpaid", "incomplete_expired")  # subscription statuses with no recovery


def update_url(invoice: Invoice) -> str:
    """Where the customer pays or changes the card: Stripe's hosted invoice, else our billing page.

    The billing page (/billing/) leads to Stripe's customer portal.
    """
    return invoice.hosted_invoice_url or f"{settings.SITE_URL.rstrip('/')}/billing/"


def cancel_date(case: DunningCase) -> date:
    """The day the cancel step of the case is due."""
    return (case.opened_at + timedelta(days=settings.BILLING_DUNNING_CANCEL_DAY)).date()


def email_context(case: DunningCase, invoice: Invoice) -> dict[str, Any]:
    """What every dunning email says: the amount, the attempts, the link, the cancel date."""
    return {
        "invoice": invoice.stripe_id,
        "amount": money(invoice.amount_due, invoice.currency),
        "attempts": invoice.attempt_count,
        "hosted_invoice_url": invoice.hosted_invoice_url,
        "update_url": update_url(invoice),
        "cancel_on": dateformat.format(cancel_date(case), "j F Y"),
        "cancel_day": settings.BILLING_DUNNING_CANCEL_DAY,
    }


def open_case(invoice: Invoice, event: StripeEvent) -> DunningCase | None:
    """Open the invoice's dunning case (once) and schedule its steps; None if not needed."""
    if invoice.subscription is None or invoice.status in SETTLED:
        return None
    if invoice.subscription.status in ENDED:
        return None  # a late failure of an ended subscription's invoice: nothing to recover
    now = timezone.now()
    case, created = DunningCase.objects.get_or_create(
        invoice=invoice,
        defaults={
            "subscription": invoice.subscription,
            "opened_at": now,
            "opened_by_event": event.stripe_id,
        },
    )
    if not created:
        return case
    customer = invoice.customer
    audit(event, case, "dunning.opened", {}, {"status": case.status}, customer=customer)
    queue_email(
        f"invoice:{invoice.stripe_id}",
        "payment_failed",
        customer=customer,
        context=email_context(case, invoice),
    )
    steps = [("remind", day) for day in settings.BILLING_DUNNING_REMINDER_DAYS]
    steps.append(("cancel", settings.BILLING_DUNNING_CANCEL_DAY))
    # By name: billing.tasks imports this module.
    dunning_step = task_named(DUNNING_STEP_JOB)
    for step, day in steps:
        dunning_step.using(
            run_after=now + timedelta(days=day),
            unique_key=f"dunning:{invoice.stripe_id}:{step}:{day}",
            target=f"billing.dunningcase:{case.pk}",
        ).enqueue(case_id=case.pk, step=step, day=day)
    return case


def _settle(cases: QuerySet[DunningCase], status: str, cause: StripeEvent | str, note: str) -> int:
    """Close the open cases among `cases` with `status` and discard their waiting steps.

    Each case closes by a conditional UPDATE (open -> status): of two causes racing, one wins.
    A step that already started finds its case closed and does nothing.
    """
    cause_id = cause.stripe_id if isinstance(cause, StripeEvent) else cause
    closed = 0
    for case in cases.filter(status=DunningCase.Status.OPEN).select_related("invoice__customer"):
        won = DunningCase.objects.filter(pk=case.pk, status=DunningCase.Status.OPEN).update(
            status=status, closed_at=timezone.now(), closed_by=cause_id
        )
        if not won:
            continue
        closed += 1
        customer = case.invoice.customer
        audit(cause, case, "dunning.closed", {"status": "open"}, {"status": status}, customer)
        # Settle the steps still waiting, audited by the jobs layer with the cause.
        waiting = Job.objects.filter(
            name=DUNNING_STEP_JOB,
            unique_key__startswith=f"dunning:{case.invoice.stripe_id}:",
            status=Job.Status.QUEUED,
        ).values_list("pk", flat=True)
        for job_id in waiting:
            discard(job_id, actor=f"billing ({cause_id})", note=note)
    return closed


def close_case(invoice: Invoice, event: StripeEvent) -> bool:
    """A payment came in: close the invoice's open case so no later step does anything."""
    cases = DunningCase.objects.filter(invoice=invoice)
    return bool(_settle(cases, DunningCase.Status.PAID, event, "invoice paid"))


def end_cases(subscription: Subscription, event: StripeEvent) -> int:
    """The subscription ended (deleted, canceled, unpaid, expired): its open cases stop here."""
    if subscription.status not in ENDED:
        return 0
    cases = DunningCase.objects.filter(subscription=subscription)
    return _settle(cases, DunningCase.Status.CANCELED, event, f"subscription {subscription.status}")


def run_step(case_id: int, step: str, day: int) -> None:
    """One step of a case: a reminder email, or cancelling the subscription through Stripe.

    The cancel step runs after billing.handlers.invoice.paid_at_stripe found the invoice still
    unpaid (billing.tasks.dunning_step asks it first).
    """
    if step == "cancel":
        # The subscription before the case, in the order of the subscription handlers (which
        # close its cases when it ends): the other order could deadlock with them.
        list(
            Subscription.objects.select_for_update(of=("self",), no_key=True).filter(
                dunningcase__pk=case_id
            )
        )
    # Lock the case row: the invoice handler locks the invoice, then the case.
    case = (
        DunningCase.objects.select_for_update(of=("self",), no_key=True)
        .select_related("invoice__customer", "subscription")
        .get(pk=case_id)
    )
    if case.status != DunningCase.Status.OPEN:
        return  # paid (or canceled) meanwhile: the remaining steps do nothing
    cause = step_cause(case.invoice.stripe_id, day)
    if step == "remind":
        _remind(case, day, cause)
    else:
        _cancel(case, cause)


def step_cause(invoice_id: str, day: int) -> str:
    """What a step's audit rows and emails name as their cause."""
    return f"dunning:{invoice_id}:day{day}"


def _remind(case: DunningCase, day: int, cause: str) -> None:
    """A reminder; the last one before the cancellation is the final notice, with its date."""
    invoice, customer = case.invoice, case.invoice.customer
    final = day == max(settings.BILLING_DUNNING_REMINDER_DAYS)
    queue_email(
        cause,
        "dunning_final" if final else "dunning_reminder",
        customer=customer,
        context={**email_context(case, invoice), "case": case.pk, "day": day},
    )
    audit(cause, case, "dunning.reminded", {}, {"day": day}, customer=customer)


def _cancel(case: DunningCase, cause: str) -> None:
    """Cancel the case's subscription at Stripe, then here, and tell the customer.

    The case row stays locked while Stripe answers: a payment arriving meanwhile waits for
    this decision instead of racing it.
    """
    subscription, customer = case.subscription, case.invoice.customer
    try:
        client().v1.subscriptions.cancel(subscription.stripe_id)
    except stripe.InvalidRequestError as exc:
        if not is_missing(exc):
            raise
        # Already gone at Stripe (canceled by hand): the outcome we wanted.
    now = timezone.now()
    before = {"status": subscription.status}
    Subscription.objects.filter(pk=subscription.pk).update(
        status="canceled", canceled_at=now, stripe_event_created=now, stripe_event_rank=3
    )
    audit(cause, subscription, "dunning.canceled_subscription", before, {"status": "canceled"})
    case.status, case.closed_at, case.closed_by = DunningCase.Status.CANCELED, now, cause
    case.save(update_fields=["status", "closed_at", "closed_by"])
    invalidate_entitlements(customer)
    queue_email(
        f"subscription:{subscription.stripe_id}",
        "subscription_canceled",
        customer=customer,
        context={"plan": subscription.plan, "reason": "unpaid"},
    )
