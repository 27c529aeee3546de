"""Staff find events by what they paste: part of an event id, an object id, a customer's e-mail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing.models import Customer, StripeEvent
from jobs.models import Job
from tests.billing.conftest import make_event
from tests.billing.helpers import deliver, run_at

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def events(client):
    ann = {"id": "cus_Ann123", "object": "customer", "email": "ann.smith@example.com"}
    bob = {"id": "cus_Bob456", "object": "customer", "email": "bob@example.org"}
    invoice = {"id": "in_Zq9", "object": "invoice", "customer": "cus_Ann123", "amount_paid": 5}
    created = int(T0.timestamp())
    for event in (
        make_event("customer.created", ann, id="evt_1QxAnnCreated", created=created),
        make_event("customer.created", bob, id="evt_1QxBobCreated", created=created),
        make_event("invoice.paid", invoice, id="evt_1QyAnnInvoice", created=created + 1),
    ):
        deliver(client, event, T0)
    run_at(T0)


def found(admin_client, term: str) -> set[str]:
    page = admin_client.get("/admin/billing/stripeevent/", {"q": term}).content.decode()
    return {
        evt
        for evt in ("evt_1QxAnnCreated", "evt_1QxBobCreated", "evt_1QyAnnInvoice")
        if evt in page
    }


def test_part_of_an_event_id_finds_it(admin_client, events):
    assert found(admin_client, "1QxBobCr") == {"evt_1QxBobCreated"}
    assert found(admin_client, "evt_1Qx") == {"evt_1QxAnnCreated", "evt_1QxBobCreated"}


def test_a_customer_email_or_part_of_it_finds_the_customers_events(admin_client, events):
    everything_of_ann = {"evt_1QxAnnCreated", "evt_1QyAnnInvoice"}
    assert found(admin_client, "ann.smith@example.com") == everything_of_ann
    assert found(admin_client, "ANN.smith@") == everything_of_ann


def test_an_object_id_finds_the_events_about_it(admin_client, events):
    assert found(admin_client, "in_Zq9") == {"evt_1QyAnnInvoice"}
    assert found(admin_client, "cus_Ann123") == {"evt_1QxAnnCreated", "evt_1QyAnnInvoice"}


def test_a_short_fragment_matches_whole_ids_only_and_the_page_says_why(admin_client, events):
    page = admin_client.get("/admin/billing/stripeevent/", {"q": "1Q"}).content.decode()

    assert found(admin_client, "1Q") == set()
    assert "parts of ids need 3 characters or more" in page


def test_three_characters_of_an_event_id_are_enough(admin_client, events):
    assert found(admin_client, "Bob") == {"evt_1QxBobCreated"}


def test_an_email_only_in_a_dead_events_payload_and_its_error_find_it(admin_client, events, client):
    lost = {
        "id": "cus_Lost789",
        "object": "customer",
        "email": "Lost.Soul@example.net",
        "metadata": {"user_id": "424242"},  # no such user: the event dies, no customer row
    }
    deliver(client, make_event("customer.created", lost, id="evt_1QzLostOne"), T0)
    Job.objects.update(max_attempts=1)
    run_at(T0)
    assert StripeEvent.objects.get(stripe_id="evt_1QzLostOne").status == "dead"
    assert not Customer.objects.filter(email__iexact="lost.soul@example.net").exists()

    for term in ("lost.soul@example.net", "matching query does not"):
        page = admin_client.get("/admin/billing/stripeevent/", {"q": term}).content.decode()
        assert "evt_1QzLostOne" in page
        assert "evt_1QxAnnCreated" not in page
