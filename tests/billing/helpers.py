"""Driving the pipeline in tests: deliver through the webhook, run due jobs on a frozen clock."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine
from django.db.models import Sum

from billing.models import (
    Customer,
    Invoice,
    Payment,
    PaymentMethod,
    Subscription,
    WalletTransaction,
)
from jobs.models import Job
from jobs.testing import run_due_jobs
from tests.billing.conftest import post_event


def run_at(moment: datetime) -> int:
    """Run every job due at `moment`, as a worker would, with the clock stopped there."""
    with time_machine.travel(moment, tick=False):
        return run_due_jobs()


def deliver(client, event: dict, moment: datetime | None = None) -> None:
    """POST the signed event at `moment` (default: its own `created` time); it must be taken."""
    moment = moment or datetime.fromtimestamp(event["created"], tz=UTC)
    with time_machine.travel(moment, tick=False):
        response = post_event(client, event)
    assert response.status_code == 200, response.content


def drain(until: datetime) -> None:
    """Run jobs at their own due times (retries, dunning steps, emails) up to `until`."""
    for _ in range(500):
        due = (
            Job.objects.filter(status__in=Job.WAITING, run_at__lte=until).order_by("run_at").first()
        )
        if due is None:
            return
        run_at(due.run_at)
    raise AssertionError("jobs keep coming: a retry loop?")


def snapshot() -> dict:
    """The billing state a person would check, without row ids or our own timestamps."""
    return {
        "customers": sorted(
            (c.stripe_id, c.user.username if c.user else None, c.email, c.name, c.deleted)
            for c in Customer.objects.select_related("user")
        ),
        "subscriptions": sorted(
            (
                s.stripe_id,
                s.customer.stripe_id,
                s.status,
                s.price_id,
                s.plan,
                s.quantity,
                s.trial_end,
                s.current_period_end,
                s.cancel_at_period_end,
                s.canceled_at,
            )
            for s in Subscription.objects.select_related("customer")
        ),
        "invoices": sorted(
            (
                i.stripe_id,
                i.customer.stripe_id,
                i.subscription.stripe_id if i.subscription else None,
                i.status,
                i.amount_due,
                i.amount_paid,
                i.currency,
                i.attempt_count,
                i.hosted_invoice_url,
            )
            for i in Invoice.objects.select_related("customer", "subscription")
        ),
        "payments": sorted(
            (
                p.stripe_id,
                p.customer.stripe_id if p.customer else None,
                p.charge_id,
                p.amount,
                p.amount_refunded,
                p.refunded,
                p.status,
            )
            for p in Payment.objects.select_related("customer")
        ),
        "payment_methods": sorted(
            (m.stripe_id, m.customer.stripe_id if m.customer else None, m.brand, m.attached)
            for m in PaymentMethod.objects.select_related("customer")
        ),
        "wallets": sorted(
            WalletTransaction.objects.values_list("customer__stripe_id", "currency")
            .annotate(balance=Sum("amount"))
            .order_by()
        ),
        "top_ups": sorted(
            WalletTransaction.objects.filter(kind="top_up").values_list("source", "amount")
        ),
        "refunded": sorted(
            WalletTransaction.objects.filter(kind="refund")
            .values_list("charge_id")
            .annotate(total=Sum("amount"))
            .order_by()
        ),
    }


def sent(outbox: list) -> list[tuple[str, str]]:
    """(recipient, subject) of every email that went out, sorted."""
    return sorted((message.to[0], message.subject) for message in outbox)
