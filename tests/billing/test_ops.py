"""Stripe events on the operations dashboard and in /metrics."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from billing.models import StripeEvent
from jobs.models import Job
from tests.billing.conftest import make_event
from tests.billing.helpers import deliver, run_at

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def customer(customer_id: str, **fields) -> dict:
    return {
        "id": customer_id,
        "object": "customer",
        "email": f"{customer_id}@example.com",
        **fields,
    }


@pytest.fixture
def events(client):
    """At T0: two events processed, one dead (its user does not exist), one still waiting."""
    for name in ("cus_a", "cus_b"):
        deliver(client, make_event("customer.created", customer(name)), T0)
    run_at(T0)
    deliver(
        client,
        make_event("customer.created", customer("cus_x", metadata={"user_id": "999999"})),
        T0,
    )
    Job.objects.filter(status="queued").update(max_attempts=1)
    run_at(T0)
    later = make_event("customer.updated", customer("cus_a"))
    deliver(client, later, T0 + timedelta(minutes=50))
    # received_at is PostgreSQL's now(), which time-machine does not move: set the arrivals.
    StripeEvent.objects.update(received_at=T0)
    StripeEvent.objects.filter(stripe_id=later["id"]).update(received_at=T0 + timedelta(minutes=50))
    return StripeEvent.objects.all()


def cards(body: str) -> dict[str, str]:
    """Dashboard card label -> value, as a person reads them."""
    found = re.findall(
        r'<div class="value">([^<]*)</div><div class="label">([^<]*?)(?: \u203a)?</div>', body
    )
    return {label: value for value, label in found}


def test_dashboard_shows_the_stripe_event_cards(admin_client, events):
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        body = admin_client.get("/admin/dashboard/").content.decode()

    shown = cards(body)
    assert shown["Stripe events, 24 h"] == "4"
    assert shown["Oldest unprocessed event"] == "10 min"
    assert shown["Dead events"] == "1"
    assert shown["Events failing, retrying"] == "0"
    assert '/admin/billing/stripeevent/?status__exact=dead"' in body


def test_dashboard_charts_events_and_failures_per_hour(admin_client, events):
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        body = admin_client.get("/admin/dashboard/").content.decode()

    assert "Stripe events per hour, last 24 hours" in body
    assert "09:00 UTC: 4 events received, 1 failed processing attempts" in body


def test_metrics_count_events_by_type_and_status_and_the_oldest_waiting(client, events):
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        body = client.get("/metrics").content.decode()

    assert 'stripe_events{status="processed",type="customer.created"} 2.0' in body
    assert 'stripe_events{status="dead",type="customer.created"} 1.0' in body
    assert 'stripe_events{status="received",type="customer.updated"} 1.0' in body
    assert "stripe_oldest_unprocessed_seconds 600.0" in body


def test_oldest_unprocessed_age_is_zero_in_metrics_when_nothing_waits(client):
    body = client.get("/metrics").content.decode()

    assert "stripe_oldest_unprocessed_seconds 0.0" in body
