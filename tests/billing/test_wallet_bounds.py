"""A top-up credits only what we sell, a wallet never goes negative, and an event whose data
breaks a database rule is dead at once with the rule named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.models import StripeEvent, WalletTransaction
from tests.billing.conftest import make_event
from tests.billing.helpers import deliver, drain
from tests.billing.test_payments import TOP_UP, charge, intent, top_up_session

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def bounds(settings):
    settings.BILLING_TOP_UP_CURRENCY = "eur"
    settings.BILLING_TOP_UP_MIN = 500
    settings.BILLING_TOP_UP_MAX = 50_000
    settings.ADMINS = [("Ops", "ops@example.com")]


@pytest.fixture
def tell(client, django_capture_on_commit_callbacks):
    """Deliver (type, object) events a second apart, run what they cause; returns their ids."""

    def deliver_all(*events: tuple[str, dict]) -> list[str]:
        ids = []
        for offset, (kind, obj) in enumerate(events):
            moment = T0 + timedelta(seconds=offset)
            event = make_event(kind, obj, created=int(moment.timestamp()))
            deliver(client, event, moment)
            ids.append(event["id"])
        with django_capture_on_commit_callbacks(execute=True):
            drain(until=T0 + timedelta(hours=6))
        # A dead job's alert is queued once its death commits (those callbacks just ran, on the
        # real clock): send it.
        drain(until=datetime.now(UTC) + timedelta(hours=1))
        return ids

    return deliver_all


def dead_at_once(stripe_id: str) -> str:
    """The event is dead after one attempt: its job's last error."""
    event = StripeEvent.objects.select_related("job").get(stripe_id=stripe_id)
    assert (event.status, event.job.attempts) == ("dead", 1)
    return event.job.last_error


def staff_alerts(mailbox) -> list:
    return [message for message in mailbox if message.to == ["ops@example.com"]]


def balance() -> int:
    return sum(WalletTransaction.objects.values_list("amount", flat=True))


@pytest.mark.parametrize(
    ("amount", "currency", "reason"),
    [
        (10**15, "eur", "outside the top-up bounds 500..50000 eur"),
        (499, "eur", "outside the top-up bounds"),
        (50_001, "eur", "outside the top-up bounds"),
        (-5, "eur", "outside the top-up bounds"),
        (0, "eur", "outside the top-up bounds"),
        (3000, "usd", "currency 'usd' is not the top-up currency 'eur'"),
        (3000, "", "is not the top-up currency"),
    ],
)
@pytest.mark.parametrize("kind", ["checkout.session.completed", "payment_intent.succeeded"])
def test_a_top_up_we_do_not_sell_credits_nothing_dies_at_once_and_alerts_staff(
    tell, mailbox, kind, amount, currency, reason
):
    if kind == "checkout.session.completed":
        obj = {**top_up_session(), "amount_total": amount, "currency": currency}
    else:
        obj = intent(metadata=TOP_UP, amount=amount, amount_received=amount, currency=currency)

    (event_id,) = tell((kind, obj))

    assert reason in dead_at_once(event_id)
    assert not WalletTransaction.objects.exists()
    alerts = staff_alerts(mailbox)
    assert len(alerts) == 1 and reason in alerts[0].body


@pytest.mark.parametrize("amount", [500, 50_000])
def test_a_top_up_at_the_bounds_is_credited(tell, amount):
    obj = {**top_up_session(), "amount_total": amount, "currency": "EUR"}

    tell(("checkout.session.completed", obj))

    assert balance() == amount


def test_with_refetch_the_amount_credited_is_the_re_read_intents(tell, settings, fake_stripe):
    settings.STRIPE_REFETCH_OBJECTS = True
    fake_stripe.put(intent(metadata=TOP_UP, amount=2500, amount_received=2500))
    claimed = intent(metadata=TOP_UP, amount=10**15, amount_received=10**15)

    tell(("payment_intent.succeeded", claimed))

    assert balance() == 2500


def test_with_refetch_a_re_read_amount_out_of_bounds_credits_nothing(
    tell, settings, fake_stripe, mailbox
):
    settings.STRIPE_REFETCH_OBJECTS = True
    fake_stripe.put(intent(metadata=TOP_UP, amount=10**15, amount_received=10**15))

    (event_id,) = tell(("payment_intent.succeeded", intent(metadata=TOP_UP)))

    assert "outside the top-up bounds" in dead_at_once(event_id)
    assert not WalletTransaction.objects.exists()


def test_a_refund_larger_than_the_top_up_never_makes_the_wallet_negative(tell, mailbox):
    refund = {**charge(10**12), "metadata": TOP_UP}

    _, _, refund_id = tell(
        ("checkout.session.completed", top_up_session()),
        ("payment_intent.succeeded", intent(metadata=TOP_UP)),
        ("charge.refunded", refund),
    )

    assert "exceeds its credit of 3000" in dead_at_once(refund_id)
    assert balance() == 3000


def test_a_top_up_refunded_before_its_credit_is_debited_after_it(tell):
    tell(
        ("charge.refunded", {**charge(3000), "metadata": TOP_UP}),
        ("checkout.session.completed", top_up_session()),
    )

    assert balance() == 0
    assert WalletTransaction.objects.count() == 2


def test_an_event_breaking_a_check_constraint_is_dead_at_once_naming_it(tell, mailbox):
    (event_id,) = tell(("charge.refunded", charge(-5)))

    error = dead_at_once(event_id)
    assert "billing_payment_refund_not_negative" in error
    assert len(staff_alerts(mailbox)) == 1
