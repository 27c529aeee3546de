"""Dunning on a frozen clock: day 0 email, reminders on days 3 and 7, cancel on day 10."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.models import DunningCase, Invoice, Subscription
from jobs.models import Job, JobAction
from tests.billing.conftest import make_event
from tests.billing.helpers import deliver, drain, run_at, sent

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
FAILED = ("carl@example.com", "Your payment failed")
REMINDER = ("carl@example.com", "Reminder: your invoice is still unpaid")
CANCELED = ("carl@example.com", "Your subscription has been canceled")
FINAL = ("carl@example.com", "Final notice: your subscription will be canceled on 11 December 2026")


def at(moment: datetime) -> int:
    return int(moment.timestamp())


def invoice(status: str, paid: int = 0, attempts: int = 1) -> dict:
    return {
        "id": "in_carl",
        "object": "invoice",
        "customer": "cus_carl",
        "parent": {"subscription_details": {"subscription": "sub_carl"}},
        "status": status,
        "amount_due": 1500,
        "amount_paid": paid,
        "currency": "usd",
        "attempt_count": attempts,
        "hosted_invoice_url": "https://invoice.stripe.test/in_carl",
    }


@pytest.fixture
def subscribed(client):
    """Carl, with an active subscription, all applied before T0."""
    customer = {"id": "cus_carl", "object": "customer", "email": "carl@example.com", "name": "Carl"}
    subscription = {
        "id": "sub_carl",
        "object": "subscription",
        "customer": "cus_carl",
        "status": "active",
        "items": {"data": [{"price": {"id": "price_pro", "lookup_key": "pro"}}]},
    }
    for offset, event in enumerate(
        [
            make_event("customer.created", customer, created=at(T0 - DAY)),
            make_event("customer.subscription.created", subscription, created=at(T0 - DAY) + 1),
        ]
    ):
        deliver(client, event, T0 - DAY + timedelta(seconds=offset))
    run_at(T0 - DAY + timedelta(seconds=5))


def fail_payment(client, moment: datetime = T0, attempts: int = 1) -> None:
    deliver(
        client,
        make_event(
            "invoice.payment_failed", invoice("open", attempts=attempts), created=at(moment)
        ),
        moment,
    )
    run_at(moment)


def test_unpaid_invoice_gets_day_0_3_7_emails_and_is_canceled_on_day_10(
    client, mailbox, fake_stripe, subscribed
):
    fail_payment(client)
    assert sent(mailbox) == [FAILED]
    assert "https://invoice.stripe.test/in_carl" in mailbox[0].body
    assert "15.00 USD" in mailbox[0].body

    drain(until=T0 + 3 * DAY - timedelta(seconds=1))
    assert len(mailbox) == 1  # nothing early
    drain(until=T0 + 3 * DAY)
    assert sent(mailbox) == sorted([FAILED, REMINDER])
    drain(until=T0 + 7 * DAY)
    assert sent(mailbox) == sorted([FAILED, REMINDER, FINAL])
    assert fake_stripe.canceled == []

    drain(until=T0 + 10 * DAY)

    assert fake_stripe.canceled == ["sub_carl"]  # through the real stripe client, over HTTP
    assert Subscription.objects.get().status == "canceled"
    assert DunningCase.objects.get().status == "canceled"
    assert sent(mailbox) == sorted([FAILED, REMINDER, FINAL, CANCELED])


def test_stripes_own_deletion_event_after_the_cancel_sends_no_second_email(
    client, mailbox, fake_stripe, subscribed
):
    fail_payment(client)
    drain(until=T0 + 10 * DAY)
    deleted = {
        "id": "sub_carl",
        "object": "subscription",
        "customer": "cus_carl",
        "status": "canceled",
        "canceled_at": at(T0 + 10 * DAY),
    }
    later = T0 + 10 * DAY + timedelta(seconds=2)
    deliver(client, make_event("customer.subscription.deleted", deleted, created=at(later)), later)
    drain(until=later + DAY)

    assert sent(mailbox).count(CANCELED) == 1
    assert Subscription.objects.get().status == "canceled"


def test_payment_closes_the_case_and_stops_every_pending_step(
    client, mailbox, fake_stripe, subscribed
):
    fail_payment(client)
    drain(until=T0 + 3 * DAY)
    paid_at = T0 + 4 * DAY
    deliver(
        client, make_event("invoice.paid", invoice("paid", 1500, 2), created=at(paid_at)), paid_at
    )

    drain(until=T0 + 30 * DAY)

    assert DunningCase.objects.get().status == "paid"
    assert fake_stripe.canceled == []
    assert Subscription.objects.get().status == "active"
    assert sent(mailbox) == sorted(
        [FAILED, REMINDER, ("carl@example.com", "Receipt for your payment")]
    )
    steps = Job.objects.filter(name="billing.tasks.dunning_step").order_by("run_at")
    assert list(steps.values_list("status", flat=True)) == ["succeeded", "discarded", "discarded"]
    assert JobAction.objects.filter(kind="discard").count() == 2  # audited, with the cause


def test_repeated_payment_failures_open_one_case_with_one_set_of_steps(
    client, mailbox, fake_stripe, subscribed
):
    fail_payment(client)
    fail_payment(client, T0 + 2 * DAY, attempts=2)  # Stripe's own retry of the charge failed

    drain(until=T0 + 10 * DAY)

    assert DunningCase.objects.count() == 1
    assert Job.objects.filter(name="billing.tasks.dunning_step").count() == 3
    assert sent(mailbox).count(FAILED) == 1
    assert fake_stripe.canceled == ["sub_carl"]


def test_dunning_days_come_from_settings(client, mailbox, fake_stripe, subscribed, settings):
    settings.BILLING_DUNNING_REMINDER_DAYS = [1]
    settings.BILLING_DUNNING_CANCEL_DAY = 2
    fail_payment(client)

    drain(until=T0 + 2 * DAY)

    # The last reminder before the cancellation is the final notice.
    final = (
        "carl@example.com",
        "Final notice: your subscription will be canceled on 3 December 2026",
    )
    assert sent(mailbox) == sorted([FAILED, final, CANCELED])
    assert fake_stripe.canceled == ["sub_carl"]


def test_subscription_already_gone_at_stripe_counts_as_canceled(
    client, mailbox, fake_stripe, subscribed
):
    fake_stripe.missing.add("sub_carl")  # canceled by hand in the Dashboard meanwhile
    fail_payment(client)

    drain(until=T0 + 10 * DAY)

    assert DunningCase.objects.get().status == "canceled"
    assert (
        Job.objects.get(name="billing.tasks.dunning_step", kwargs__step="cancel").status
        == "succeeded"
    )


def subscription_ended(kind: str, status: str, moment: datetime) -> dict:
    ended = {
        "id": "sub_carl",
        "object": "subscription",
        "customer": "cus_carl",
        "status": status,
        "items": {"data": [{"price": {"id": "price_pro", "lookup_key": "pro"}}]},
        "canceled_at": at(moment) if status == "canceled" else None,
    }
    return make_event(kind, ended, created=at(moment))


@pytest.mark.parametrize(
    "kind,status",
    [
        ("customer.subscription.deleted", "canceled"),
        ("customer.subscription.updated", "canceled"),
        ("customer.subscription.updated", "unpaid"),
        ("customer.subscription.updated", "incomplete_expired"),
    ],
)
def test_subscription_ending_during_dunning_closes_the_case_and_stops_its_steps(
    client, mailbox, fake_stripe, subscribed, kind, status
):
    fail_payment(client)
    drain(until=T0 + 3 * DAY)
    ended_at = T0 + 5 * DAY
    event = subscription_ended(kind, status, ended_at)
    deliver(client, event, ended_at)

    drain(until=T0 + 30 * DAY)

    case = DunningCase.objects.get()
    assert (case.status, case.closed_by) == ("canceled", event["id"])
    steps = Job.objects.filter(name="billing.tasks.dunning_step").order_by("run_at")
    assert list(steps.values_list("status", flat=True)) == ["succeeded", "discarded", "discarded"]
    assert fake_stripe.canceled == []  # nothing left to cancel
    assert REMINDER in sent(mailbox) and sent(mailbox).count(REMINDER) == 1  # no day-7 notice


def test_payment_failure_of_an_ended_subscription_opens_no_case(
    client, mailbox, fake_stripe, subscribed
):
    gone = T0 - timedelta(hours=1)
    deliver(client, subscription_ended("customer.subscription.deleted", "canceled", gone), gone)
    run_at(gone)

    fail_payment(client)  # a late failure of its last invoice
    drain(until=T0 + 30 * DAY)

    assert not DunningCase.objects.exists()
    assert fake_stripe.canceled == []


def test_day_10_finds_the_invoice_paid_at_stripe_and_cancels_nothing(
    client, mailbox, fake_stripe, subscribed
):
    fail_payment(client)
    paid_at = T0 + 6 * DAY
    fake_stripe.put({**invoice("paid", 1500, 2), "status_transitions": {"paid_at": at(paid_at)}})
    # ...and the invoice.paid event never arrives.

    drain(until=T0 + 10 * DAY)

    assert fake_stripe.canceled == []
    assert ("GET", "/v1/invoices/in_carl") in fake_stripe.requests
    assert DunningCase.objects.get().status == "paid"
    assert Subscription.objects.get().status == "active"
    assert Invoice.objects.get().status == "paid"
    assert CANCELED not in sent(mailbox)
    assert ("carl@example.com", "Receipt for your payment") in sent(mailbox)


def test_day_10_cancels_when_stripe_still_has_the_invoice_open(
    client, mailbox, fake_stripe, subscribed
):
    fail_payment(client)
    fake_stripe.put(invoice("open", 0, 4))

    drain(until=T0 + 10 * DAY)

    assert ("GET", "/v1/invoices/in_carl") in fake_stripe.requests
    assert fake_stripe.canceled == ["sub_carl"]
    assert DunningCase.objects.get().status == "canceled"


def bodies(mailbox, subject_start: str) -> tuple[str, str]:
    (message,) = [message for message in mailbox if message.subject.startswith(subject_start)]
    return message.body, message.alternatives[0][0]


def test_dunning_escalates_with_amount_attempts_and_where_to_update_the_card(
    client, mailbox, fake_stripe, subscribed
):
    fail_payment(client)
    fail_payment(client, T0 + 2 * DAY, attempts=2)  # Stripe's retry failed too

    drain(until=T0 + 7 * DAY)

    for subject, attempts, words in [
        ("Your payment failed", 1, "failed"),
        ("Reminder", 2, "still unpaid"),
        ("Final notice", 2, "will be canceled on 11 December 2026"),
    ]:
        for body in bodies(mailbox, subject):
            assert "15.00 USD" in body
            assert f"{attempts} attempt" in body
            assert words in body
            assert "https://invoice.stripe.test/in_carl" in body


def test_without_a_hosted_invoice_the_emails_link_to_the_billing_page_not_the_site_root(
    client, mailbox, fake_stripe, subscribed, settings
):
    settings.SITE_URL = "https://prebook.test"
    no_link = {**invoice("open"), "hosted_invoice_url": None}
    deliver(client, make_event("invoice.payment_failed", no_link, created=at(T0)), T0)

    drain(until=T0 + 7 * DAY)

    assert len(mailbox) == 3
    for message in mailbox:
        for body in (message.body, message.alternatives[0][0]):
            assert "https://prebook.test/billing/" in body
            assert 'href=""' not in body
