"""stripe_sync_events: list events from the (fake, local) Stripe API and ingest what we lack."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.models import Customer, StripeEvent
from billing.services import ingest_event
from jobs.models import Job
from tests.billing.conftest import make_event
from tests.billing.helpers import run_at

pytestmark = pytest.mark.django_db
SINCE = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())


def customer_events(count: int, start: int) -> list[dict]:
    return [
        make_event(
            "customer.created",
            {"id": f"cus_{n}", "object": "customer", "email": f"c{n}@example.com", "name": ""},
            id=f"evt_backfill_{n:04d}",
            created=start + n,
        )
        for n in range(count)
    ]


def test_backfill_ingests_missing_events_across_pages_and_reports(fake_stripe):
    fake_stripe.events = customer_events(250, SINCE)
    older = make_event(
        "customer.created",
        {"id": "cus_old", "object": "customer"},
        id="evt_before_since",
        created=SINCE - 1,
    )
    fake_stripe.events.append(older)
    for event in fake_stripe.events[:30]:
        ingest_event(event)  # these came by webhook before the outage
    out = StringIO()

    call_command("stripe_sync_events", "--since", "2026-11-01", stdout=out)

    assert "fetched 250, new 220, already had 30" in out.getvalue()
    assert StripeEvent.objects.count() == 250
    assert not StripeEvent.objects.filter(stripe_id="evt_before_since").exists()
    assert Job.objects.filter(name="billing.tasks.process_event").count() == 250
    pages = [path for method, path in fake_stripe.requests if path.startswith("/v1/events")]
    assert len(pages) == 3  # 100 + 100 + 50, auto-paging with starting_after
    assert "starting_after=" in pages[1]


def test_backfilled_events_are_processed_like_webhook_ones(fake_stripe):
    fake_stripe.events = customer_events(3, SINCE)
    call_command("stripe_sync_events", "--since", "2026-11-01", stdout=StringIO())

    run_at(datetime.now(tz=UTC))

    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert Customer.objects.count() == 3


def test_second_backfill_finds_nothing_new(fake_stripe):
    fake_stripe.events = customer_events(5, SINCE)
    call_command("stripe_sync_events", "--since", "2026-11-01", stdout=StringIO())
    out = StringIO()

    call_command("stripe_sync_events", "--since", "2026-11-01", stdout=out)

    assert "fetched 5, new 0, already had 5" in out.getvalue()
    assert Job.objects.count() == 5


def test_backfill_without_an_api_key_is_a_clear_error(settings):
    settings.STRIPE_API_KEY = ""

    with pytest.raises(CommandError, match="STRIPE_API_KEY is not set"):
        call_command("stripe_sync_events", "--since", "2026-11-01", stdout=StringIO())
