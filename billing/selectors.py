"""Read-only queries: Stripe events for the dashboard and /metrics; a user's billing page."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import TruncHour
from django.utils import timezone

from billing.models import (
    Customer,
    DunningCase,
    Invoice,
    PaymentMethod,
    StripeEvent,
    Subscription,
    WalletTransaction,
)
from billing.services import PROCESS_EVENT_JOB
from jobs.models import Job, JobAttempt
from jobs.selectors import fill_hours, first_hour


def oldest_unprocessed_age(now: datetime | None = None) -> timedelta | None:
    """How long the oldest event not yet processed (received: waiting for its job, or retrying)
    has waited.

    Its filter is the predicate of the partial index billing_event_unprocessed_idx, so this
    reads the first entry of a small index, not the table.
    """
    now = now or timezone.now()
    oldest = StripeEvent.objects.filter(status=StripeEvent.Status.RECEIVED).aggregate(
        Min("received_at")
    )["received_at__min"]
    return max(now - oldest, timedelta(0)) if oldest else None


def needing_attention() -> dict[str, int]:
    """Events failing (their job will retry) and dead (staff must act).

    Failing is read from the jobs: an event is received until its job settles it.
    """
    return {
        "failed": StripeEvent.objects.filter(
            status=StripeEvent.Status.RECEIVED, job__status=Job.Status.RETRYING
        ).count(),
        "dead": StripeEvent.objects.filter(status=StripeEvent.Status.DEAD).count(),
    }


def type_status_counts() -> list[tuple[str, str, int]]:
    """(type, status, count) over the whole table, for /metrics.

    A GROUP BY over every row, which retention bounds: a parallel sequential scan, which a
    (type, status) index does not beat. Once per scrape that is fine; with far more rows, cache it.
    """
    rows = StripeEvent.objects.values_list("type", "status").annotate(n=Count("pk")).order_by()
    return sorted(rows)


def events_per_hour(hours: int = 24, now: datetime | None = None) -> list[dict]:
    """Events received and failed processing attempts per hour, oldest first, gaps filled.

    "total" counts events by the hour they arrived; "failures" counts failed or crashed
    attempts of their processing job by the hour the attempt started (a retried event fails
    in later hours too, so failures can exceed arrivals in an hour).
    """
    now = now or timezone.now()
    start = first_hour(hours, now)
    received = (
        StripeEvent.objects.filter(received_at__gte=start)
        .annotate(hour=TruncHour("received_at"))
        .values_list("hour")
        .annotate(n=Count("pk"))
        .order_by()
    )
    failed = (
        JobAttempt.objects.filter(
            started_at__gte=start,
            job__name=PROCESS_EVENT_JOB,
            outcome__in=[JobAttempt.Outcome.FAILED, JobAttempt.Outcome.CRASHED],
        )
        .annotate(hour=TruncHour("started_at"))
        .values_list("hour")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return fill_hours(start, hours, total=dict(received), failures=dict(failed))


def billing_summary(customer: Customer | None) -> dict:
    """What /billing/ shows a user: subscription, card, invoices, wallet, an open dunning case.

    Read from the mirrored rows, not from Stripe: the page works while Stripe is unreachable.
    """
    if customer is None:
        return {
            "subscription": None,
            "entitled": False,
            "card": None,
            "invoices": [],
            "balances": [],
            "ledger": [],
            "dunning": None,
            "pay_by": None,
        }
    subscription = (
        customer.subscriptions.exclude(status="").order_by("-current_period_end", "-id").first()
    )
    dunning = (
        DunningCase.objects.filter(invoice__customer=customer, status=DunningCase.Status.OPEN)
        .select_related("invoice")
        .order_by("opened_at")
        .first()
    )
    return {
        "subscription": subscription,
        "entitled": bool(subscription and subscription.status in Subscription.ENTITLED),
        "card": PaymentMethod.objects.filter(customer=customer, attached=True)
        .order_by("-stripe_event_created", "-id")
        .first(),
        "invoices": list(Invoice.objects.filter(customer=customer).order_by("-id")[:12]),
        "balances": list(
            WalletTransaction.objects.filter(customer=customer)
            .values("currency")
            .annotate(balance=Sum("amount"))
            .order_by("currency")
        ),
        "ledger": list(WalletTransaction.objects.filter(customer=customer).order_by("-id")[:20]),
        "dunning": dunning,
        "pay_by": dunning
        and dunning.opened_at + timedelta(days=settings.BILLING_DUNNING_CANCEL_DAY),
    }


def subscription_confirmed(user_id: int) -> bool:
    """Whether the webhook has linked an entitled subscription to the user (read fresh)."""
    return Subscription.objects.filter(
        customer__user_id=user_id, customer__deleted=False, status__in=Subscription.ENTITLED
    ).exists()


def top_up_confirmed(customer: Customer | None, session_id: str) -> bool:
    """Whether the webhook that credits this Checkout Session of the customer has been applied.

    Asked of the event, not of the wallet row, so it holds whatever the row is keyed by (the
    session, or its payment intent); both filters match expression indexes of billing_event.
    """
    if customer is None or not session_id:
        return False
    return (
        StripeEvent.objects.alias(
            object_id=KT("payload__data__object__id"),
            customer_id=KT("payload__data__object__customer"),
        )
        .filter(
            object_id=session_id,
            customer_id=customer.stripe_id,
            type="checkout.session.completed",
            status=StripeEvent.Status.PROCESSED,
        )
        .exists()
    )
