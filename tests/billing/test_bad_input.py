"""Signed but bad events: refused with a reason, or dead at once naming the field; never a page
or a worker broken by what an event holds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from billing.models import Invoice, StripeEvent
from jobs.models import Job
from tests.billing.conftest import make_event
from tests.billing.helpers import deliver, run_at

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def store_raw(payload_json: str) -> StripeEvent:
    """An event stored as it is, as one stored before the webhook's limits (or backfilled) is."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_stripeevent (stripe_id, type, api_version, livemode, created,"
            " payload, status, received_at)"
            " VALUES ('evt_deep', 'customer.created', '', false, now(), %s::jsonb, 'processed',"
            " now()) RETURNING id",
            [payload_json],
        )
        return StripeEvent.objects.defer("payload").get(pk=cursor.fetchone()[0])


def nested(levels: int) -> str:
    return (
        '{"id": "evt_deep", "object": "event", "data": {"object": {"id": "cus_X", "metadata": '
        + '{"a": ' * levels
        + "1"
        + "}" * levels
        + "}}}"
    )


@pytest.mark.parametrize("levels", [900, 2000])
def test_event_page_of_a_deeply_nested_payload_opens_and_is_bounded(admin_client, levels):
    event = store_raw(nested(levels))

    page = admin_client.get(f"/admin/billing/stripeevent/{event.pk}/change/")
    listed = admin_client.get("/admin/billing/stripeevent/")
    whole = admin_client.get(f"/admin/billing/stripeevent/{event.pk}/payload.json")

    assert page.status_code == 200
    assert len(page.content) < 100_000
    assert "the whole payload" in page.content.decode()
    assert listed.status_code == 200
    assert "evt_deep" in listed.content.decode()
    assert whole.status_code == 200
    assert whole["Content-Type"] == "application/json"


def test_event_page_of_a_megabyte_payload_shows_a_few_kilobytes(admin_client):
    event = store_raw('{"id": "evt_deep", "blob": "' + "x" * 1_000_000 + '"}')

    page = admin_client.get(f"/admin/billing/stripeevent/{event.pk}/change/")

    assert page.status_code == 200
    assert len(page.content) < 100_000
    assert "the whole payload (1000" in page.content.decode()


def invoice(**fields) -> dict:
    return {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_1",
        "status": "paid",
        "amount_due": 900,
        "amount_paid": 900,
        "currency": "eur",
        **fields,
    }


BAD = {
    "amount past 64 bits": (
        "invoice.paid",
        invoice(amount_paid=2**70),
        "invoice.paid: data.object.amount_paid is not a 64-bit integer",
    ),
    "amount as a string": (
        "invoice.paid",
        invoice(amount_due="900"),
        "invoice.paid: data.object.amount_due is not a 64-bit integer",
    ),
    "no object id": (
        "customer.created",
        {"object": "customer", "email": "a@example.com"},
        "customer.created: data.object.id is missing",
    ),
    "id is a number": (
        "payment_intent.succeeded",
        {"id": 12, "object": "payment_intent", "amount": 5},
        "payment_intent.succeeded: data.object.id is not a non-empty string id",
    ),
    "invoice without customer": (
        "invoice.payment_failed",
        invoice(customer=None),
        "invoice.payment_failed: data.object.customer is missing",
    ),
    "time past year 9999": (
        "customer.subscription.updated",
        {"id": "sub_1", "customer": "cus_1", "trial_end": 10**12},
        "customer.subscription.updated: data.object.trial_end is not a Unix time",
    ),
    "email longer than the column": (
        "customer.updated",
        {"id": "cus_1", "email": "a" * 300 + "@example.com"},
        "customer.updated: data.object.email is not a string of at most 254 characters",
    ),
    "currency as an object": (
        "charge.refunded",
        {"id": "ch_1", "amount": 5, "currency": {"code": "eur"}},
        "charge.refunded: data.object.currency is not a string",
    ),
    "items not a list": (
        "customer.subscription.updated",
        {"id": "sub_1", "customer": "cus_1", "items": {"data": {"0": {}}}},
        "customer.subscription.updated: data.object.items.data is not a list",
    ),
    "item period past year 9999": (
        "customer.subscription.updated",
        {"id": "sub_1", "customer": "cus_1", "items": {"data": [{"current_period_end": 10**13}]}},
        "a Unix time out of range: 10000000000000",
    ),
    "quantity past 32 bits": (
        "customer.subscription.created",
        {"id": "sub_1", "customer": "cus_1", "quantity": 2**40},
        "customer.subscription.created: data.object.quantity is not a 32-bit count",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_signed_event_that_can_never_apply_dies_at_once_naming_the_field(client, case):
    event_type, obj, message = BAD[case]
    deliver(client, make_event(event_type, obj, created=int(T0.timestamp())), T0)

    run_at(T0)

    event = StripeEvent.objects.get()
    job = Job.objects.get()
    assert (event.status, job.status, job.attempts) == ("dead", "dead", 1)
    assert message in job.last_error
    assert not Invoice.objects.exists()


def test_dead_malformed_event_page_opens_and_says_what_is_wrong(admin_client, client):
    event_type, obj, message = BAD["amount past 64 bits"]
    deliver(client, make_event(event_type, obj, created=int(T0.timestamp())), T0)
    run_at(T0)
    event = StripeEvent.objects.get()

    page = admin_client.get(f"/admin/billing/stripeevent/{event.pk}/change/")

    assert page.status_code == 200
    assert message in page.content.decode()
