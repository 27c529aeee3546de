"""Processing stored events: dispatch by type, ignore the unknown, retry, go dead, replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from billing.models import ActivityLog, Customer, StripeEvent, Subscription
from billing.tasks import prune_events
from jobs.models import Job
from jobs.services import discard, replay, resolve
from jobs.testing import run_due_jobs
from tests.billing.conftest import make_event, post_event

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def run_at(moment: datetime) -> int:
    with time_machine.travel(moment, tick=False):
        return run_due_jobs()


def within_jitter(delay: timedelta, seconds: float) -> bool:
    """The policy's backoff (base 60 s, doubling) spread by the jobs layer's +/-10 % jitter."""
    return seconds * 0.9 <= delay.total_seconds() <= seconds * 1.1


def deliver_at(client, event: dict, moment: datetime = T0) -> StripeEvent:
    with time_machine.travel(moment, tick=False):
        assert post_event(client, event).status_code == 200
    return StripeEvent.objects.get(stripe_id=event["id"])


def test_unknown_event_type_is_stored_and_marked_ignored(client):
    stored = deliver_at(client, make_event("balance.available", {"object": "balance"}))

    run_at(T0)

    stored.refresh_from_db()
    assert (stored.status, stored.job.status, stored.job.attempts) == ("ignored", "succeeded", 1)


def test_customer_created_creates_the_customer_and_marks_the_event_processed(
    client, customer_event
):
    stored = deliver_at(client, customer_event("cus_A", "ann@example.com"))

    run_at(T0)

    stored.refresh_from_db()
    assert (stored.status, stored.job.attempts, stored.job.finished_at) == ("processed", 1, T0)
    customer = Customer.objects.get()
    assert (customer.stripe_id, customer.email, customer.name) == (
        "cus_A",
        "ann@example.com",
        "Ann",
    )
    assert ActivityLog.objects.get().stripe_event_id == stored.stripe_id


def test_older_customer_update_never_overwrites_newer_state(client, customer_event):
    newer = customer_event("cus_A", "new@example.com", type="customer.updated", created=2000)
    older = customer_event("cus_A", "old@example.com", type="customer.updated", created=1000)
    deliver_at(client, newer)
    run_at(T0)

    deliver_at(client, older)
    run_at(T0)

    assert Customer.objects.get().email == "new@example.com"
    assert StripeEvent.objects.filter(status="processed").count() == 2


def test_handler_that_fails_twice_then_succeeds_retries_on_the_configured_backoff(
    client, customer_event, django_user_model
):
    event = customer_event("cus_A", metadata={})
    event["data"]["object"]["metadata"] = {"user_id": "4242"}  # that user signs up later
    stored = deliver_at(client, event)

    run_at(T0)
    stored.refresh_from_db()
    job = stored.job
    assert (stored.status, job.status, job.attempts) == ("received", "retrying", 1)
    assert within_jitter(job.run_at - T0, seconds=60)
    assert "DoesNotExist" in job.last_error
    assert not Customer.objects.exists()  # the failed attempt rolled back
    assert run_at(job.run_at - timedelta(seconds=2)) == 0  # nothing runs early

    second = job.run_at
    run_at(second)
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("retrying", 2)
    assert within_jitter(job.run_at - second, seconds=120)

    django_user_model.objects.create_user(id=4242, username="late", email="late@example.com")
    run_at(job.run_at)
    stored.refresh_from_db()
    job.refresh_from_db()
    assert (stored.status, job.status, job.attempts, job.last_error) == (
        "processed",
        "succeeded",
        3,
        "",
    )
    assert Customer.objects.get().user.username == "late"


def test_handler_that_always_fails_goes_dead_after_five_attempts(client, customer_event):
    event = customer_event("cus_A")
    event["data"]["object"]["metadata"] = {"user_id": "4242"}  # a user that never exists
    stored = deliver_at(client, event)

    moment = T0
    for _ in range(5):
        run_at(moment)
        moment = Job.objects.get().run_at

    stored.refresh_from_db()
    job = stored.job
    assert (stored.status, job.status, job.attempts) == ("dead", "dead", 5)
    assert "DoesNotExist" in job.last_error
    assert run_at(T0 + timedelta(days=1)) == 0


def test_replayed_dead_event_is_processed_again(client, customer_event, django_user_model):
    event = customer_event("cus_A")
    event["data"]["object"]["metadata"] = {"user_id": "4242"}
    stored = deliver_at(client, event)
    with time_machine.travel(T0, tick=False):
        Job.objects.update(max_attempts=1)
        run_due_jobs()
    stored.refresh_from_db()
    assert stored.status == "dead"

    django_user_model.objects.create_user(id=4242, username="late")
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        assert replay(Job.objects.get().pk, actor="test").done
        stored.refresh_from_db()
        assert stored.status == "received"
        run_due_jobs()

    stored.refresh_from_db()
    assert (stored.status, stored.job.attempts) == ("processed", 2)
    assert Customer.objects.get().user.username == "late"


def test_retention_prunes_old_processed_events_and_keeps_dead_ones(client, customer_event):
    processed = deliver_at(client, customer_event("cus_A"))
    dead = deliver_at(client, customer_event("cus_B", metadata={}))
    run_at(T0)
    StripeEvent.objects.filter(pk=dead.pk).update(status="dead")

    with time_machine.travel(T0 + timedelta(days=29), tick=False):
        assert prune_events.call() == 0
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        assert prune_events.call() == 1

    assert list(StripeEvent.objects.values_list("pk", flat=True)) == [dead.pk]
    assert not StripeEvent.objects.filter(pk=processed.pk).exists()


def _subscription(status: str) -> dict:
    return {"id": "sub_S", "object": "subscription", "customer": "cus_S", "status": status}


def test_events_of_one_second_settle_on_the_later_state_whatever_the_order(client):
    # Checkout creates the subscription incomplete and activates it within the same second.
    created = make_event("customer.subscription.created", _subscription("incomplete"), created=5)
    updated = make_event("customer.subscription.updated", _subscription("active"), created=5)
    deliver_at(client, updated)
    run_at(T0)
    deliver_at(client, created)
    run_at(T0)

    assert Subscription.objects.get().status == "active"


def test_deletion_in_the_same_second_as_an_update_wins(client, customer_event):
    deliver_at(client, customer_event("cus_D", type="customer.deleted", created=7))
    deliver_at(
        client, customer_event("cus_D", "later@example.com", type="customer.updated", created=7)
    )
    run_at(T0)

    assert Customer.objects.get().deleted is True


@pytest.mark.parametrize(
    ("act", "event_status", "job_status"),
    [(resolve, "resolved", "resolved"), (discard, "ignored", "discarded")],
    ids=["resolve", "discard"],
)
def test_settling_the_dead_job_from_the_jobs_console_settles_its_event(
    client, customer_event, act, event_status, job_status
):
    event = customer_event("cus_A")
    event["data"]["object"]["metadata"] = {"user_id": "4242"}  # a user that never exists
    stored = deliver_at(client, event)
    with time_machine.travel(T0, tick=False):
        Job.objects.update(max_attempts=1)
        run_due_jobs()

    assert act(stored.job_id, actor="test").done  # the jobs layer's own action, not billing's

    stored.refresh_from_db()
    assert (stored.status, stored.job.status) == (event_status, job_status)
