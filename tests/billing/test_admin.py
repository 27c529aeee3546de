"""Billing in the admin: events with their attempts and payload, replay gated and audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.utils import timezone

from billing.models import Customer, StripeEvent
from jobs.models import Job, JobAction
from tests.billing.conftest import make_event
from tests.billing.helpers import deliver, run_at

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def after_replay() -> datetime:
    """When to run jobs after a staff action: replay() makes them due at the real clock's now."""
    return timezone.now() + timedelta(hours=1)


def staff(django_user_model, client, *codenames: str):
    user = django_user_model.objects.create_user(
        f"staff{len(codenames)}", password="pw-x-12345", is_staff=True
    )
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


@pytest.fixture
def dead_event(client):
    """A customer.created naming a user that does not exist: dead after one attempt."""
    customer = {
        "id": "cus_hal",
        "object": "customer",
        "email": "hal@example.com",
        "metadata": {"user_id": "987654"},
        "description": "y" * 5000,
    }
    deliver(client, make_event("customer.created", customer, created=int(T0.timestamp())), T0)
    Job.objects.update(max_attempts=1)
    run_at(T0)
    event = StripeEvent.objects.get()
    assert event.status == "dead"
    return event


def test_event_list_filters_by_status_and_finds_events_by_customer_id(admin_client, dead_event):
    listed = admin_client.get("/admin/billing/stripeevent/?status__exact=dead")
    found = admin_client.get("/admin/billing/stripeevent/?q=cus_hal")
    missed = admin_client.get("/admin/billing/stripeevent/?q=cus_nobody")

    assert dead_event.stripe_id in listed.content.decode()
    assert "status-dead" in listed.content.decode()
    assert dead_event.stripe_id in found.content.decode()
    assert dead_event.stripe_id not in missed.content.decode()


def test_event_page_shows_error_attempts_and_a_cut_payload_with_a_link_to_all(
    admin_client, dead_event
):
    page = admin_client.get(f"/admin/billing/stripeevent/{dead_event.pk}/change/").content.decode()
    whole = admin_client.get(f"/admin/billing/stripeevent/{dead_event.pk}/payload.json")

    assert "DoesNotExist" in page  # last error and the attempt's traceback
    assert "Traceback (most recent call last)" in page
    assert "the whole payload" in page
    assert whole.json() == dead_event.payload


def test_staff_without_the_permission_cannot_replay(client, django_user_model, dead_event):
    viewer = staff(django_user_model, client, "view_stripeevent")

    response = viewer.post(
        "/admin/billing/stripeevent/",
        {"action": "replay", "_selected_action": [dead_event.pk]},
    )

    assert response.status_code == 200  # the list again, the action unknown to this user
    assert not JobAction.objects.exists()
    dead_event.refresh_from_db()
    assert dead_event.status == "dead"


def test_replay_processes_the_event_again_and_records_who_asked(
    client, django_user_model, dead_event
):
    operator = staff(django_user_model, client, "view_stripeevent", "replay_stripeevent")
    django_user_model.objects.create_user("hal", id=987654)

    operator.post(
        "/admin/billing/stripeevent/",
        {"action": "replay", "_selected_action": [dead_event.pk]},
    )
    dead_event.refresh_from_db()
    assert dead_event.status == "received"
    run_at(after_replay())

    dead_event.refresh_from_db()
    assert dead_event.status == "processed"
    action = JobAction.objects.get()
    assert (action.kind, action.actor_name) == ("replay", "staff2")
    page = operator.get(f"/admin/billing/stripeevent/{dead_event.pk}/change/").content.decode()
    assert "staff2" in page


def test_replaying_a_processed_event_is_refused_unless_forced(client, django_user_model):
    customer = {"id": "cus_ivy", "object": "customer", "email": "ivy@example.com"}
    deliver(client, make_event("customer.created", customer, created=int(T0.timestamp())), T0)
    run_at(T0)
    event = StripeEvent.objects.get()
    operator = staff(django_user_model, client, "view_stripeevent", "replay_stripeevent")

    refused = operator.post(
        "/admin/billing/stripeevent/",
        {"action": "replay", "_selected_action": [event.pk]},
        follow=True,
    )
    assert "0 queued for replay, 1 skipped: already succeeded" in refused.content.decode()

    operator.post(
        "/admin/billing/stripeevent/",
        {"action": "force_replay", "_selected_action": [event.pk]},
    )
    run_at(after_replay())
    event.refresh_from_db()
    assert (event.status, event.job.attempts) == ("processed", 2)


@pytest.mark.parametrize(
    "model",
    [
        "customer",
        "subscription",
        "invoice",
        "payment",
        "paymentmethod",
        "wallettransaction",
        "dunningcase",
        "activitylog",
    ],
)
def test_billing_state_lists_render_read_only(admin_client, model):
    response = admin_client.get(f"/admin/billing/{model}/")

    assert response.status_code == 200
    assert f"/admin/billing/{model}/add/" not in response.content.decode()


def test_the_email_queue_list_renders_read_only(admin_client):
    response = admin_client.get("/admin/mail/email/")

    assert response.status_code == 200
    assert "/admin/mail/email/add/" not in response.content.decode()


def test_customer_page_shows_its_audit_trail(admin_client, client):
    customer = {"id": "cus_ivy", "object": "customer", "email": "ivy@example.com", "name": "Ivy"}
    event = make_event("customer.created", customer, created=int(T0.timestamp()))
    deliver(client, event, T0)
    run_at(T0)

    page = admin_client.get(f"/admin/billing/customer/{Customer.objects.get().pk}/change/")

    text = page.content.decode()
    assert "Activity (newest first)" in text
    assert event["id"] in text
    assert "email: - -&gt; ivy@example.com" in text


def dead_customer_event(client, customer_id: str, event_type: str = "customer.created"):
    """Another event that dies at once: its customer names a user that does not exist."""
    customer = {"id": customer_id, "object": "customer", "metadata": {"user_id": "987654"}}
    event = make_event(event_type, customer, created=int(T0.timestamp()))
    deliver(client, event, T0)
    Job.objects.update(max_attempts=1)
    run_at(T0)
    return StripeEvent.objects.get(stripe_id=event["id"])


def test_mark_resolved_settles_the_event_without_running_it(client, django_user_model, dead_event):
    operator = staff(django_user_model, client, "view_stripeevent", "replay_stripeevent")

    operator.post(
        "/admin/billing/stripeevent/",
        {"action": "resolve", "_selected_action": [dead_event.pk], "confirmed": "yes"},
    )
    run_at(after_replay())

    dead_event.refresh_from_db()
    assert (dead_event.status, dead_event.job.status, dead_event.job.attempts) == (
        "resolved",
        "resolved",
        1,
    )
    action = JobAction.objects.get()
    assert (action.kind, action.actor_name, action.status_before) == ("resolve", "staff2", "dead")


def test_ignore_marks_the_event_ignored_and_is_audited(client, django_user_model, dead_event):
    operator = staff(django_user_model, client, "view_stripeevent", "replay_stripeevent")

    operator.post(
        "/admin/billing/stripeevent/",
        {"action": "discard", "_selected_action": [dead_event.pk], "confirmed": "yes"},
    )

    dead_event.refresh_from_db()
    assert dead_event.status == "ignored"
    assert JobAction.objects.get().kind == "discard"
    page = operator.get(f"/admin/billing/stripeevent/{dead_event.pk}/change/").content.decode()
    assert "settled without running" in page


def test_replay_all_dead_of_a_type_replays_every_dead_event_of_that_type_only(
    client, django_user_model, dead_event
):
    second = dead_customer_event(client, "cus_two")
    other_type = dead_customer_event(client, "cus_three", event_type="customer.updated")
    operator = staff(django_user_model, client, "view_stripeevent", "replay_stripeevent")

    response = operator.post(
        "/admin/billing/stripeevent/",
        {"action": "replay_all_dead_of_type", "_selected_action": [dead_event.pk]},
        follow=True,
    )

    assert "2 queued for replay" in response.content.decode()
    statuses = dict(StripeEvent.objects.values_list("pk", "status"))
    assert statuses == {dead_event.pk: "received", second.pk: "received", other_type.pk: "dead"}


def test_replay_button_on_the_event_page_replays_it(client, django_user_model, dead_event):
    operator = staff(django_user_model, client, "view_stripeevent", "replay_stripeevent")
    page = operator.get(f"/admin/billing/stripeevent/{dead_event.pk}/change/").content.decode()
    assert "Replay now" in page
    assert "1 dead customer.created event" in page

    response = operator.post(f"/admin/billing/stripeevent/{dead_event.pk}/act/replay/", follow=True)

    assert f"Event {dead_event.stripe_id} queued for replay." in response.content.decode()
    dead_event.refresh_from_db()
    assert dead_event.status == "received"
    assert JobAction.objects.get().actor_name == "staff2"


def test_staff_without_the_permission_see_no_actions_and_cannot_post_them(
    client, django_user_model, dead_event
):
    viewer = staff(django_user_model, client, "view_stripeevent")

    listing = viewer.get("/admin/billing/stripeevent/").content.decode()
    page = viewer.get(f"/admin/billing/stripeevent/{dead_event.pk}/change/").content.decode()
    refused = viewer.post(f"/admin/billing/stripeevent/{dead_event.pk}/act/resolve/")

    assert "Replay selected events" not in listing
    assert "Replay now" not in page
    assert "Read-only" in page
    assert refused.status_code == 403
    dead_event.refresh_from_db()
    assert dead_event.status == "dead"
    assert not JobAction.objects.exists()


def test_event_page_shows_the_latest_traceback_and_the_replay_outcome(
    client, django_user_model, dead_event
):
    operator = staff(django_user_model, client, "view_stripeevent", "replay_stripeevent")
    django_user_model.objects.create_user("hal", id=987654)
    with time_machine.travel(T0.replace(minute=30), tick=False):
        operator.post(f"/admin/billing/stripeevent/{dead_event.pk}/act/replay/")
    run_at(after_replay())

    page = operator.get(f"/admin/billing/stripeevent/{dead_event.pk}/change/").content.decode()

    assert "Attempt 1 at" in page  # the failed attempt's full traceback stays readable
    assert "attempt 2: succeeded" in page
    assert "status-processed" in page


def test_event_page_buttons_answer_only_post(client, django_user_model, dead_event):
    operator = staff(django_user_model, client, "view_stripeevent", "replay_stripeevent")

    response = operator.get(f"/admin/billing/stripeevent/{dead_event.pk}/act/replay/")

    assert response.status_code == 405
    assert not JobAction.objects.exists()


def test_discard_all_dead_events_of_a_filter_asks_then_acts_through_their_jobs(
    client, django_user_model, dead_event
):
    processed = {"id": "cus_ok", "object": "customer", "email": "ok@example.com"}
    deliver(client, make_event("customer.created", processed, created=int(T0.timestamp())), T0)
    run_at(T0)
    operator = staff(django_user_model, client, "view_stripeevent", "replay_stripeevent")
    url = "/admin/billing/stripeevent/act-all/discard/?status__exact=dead"

    listing = operator.get("/admin/billing/stripeevent/?status__exact=dead").content.decode()
    asked = operator.get(url).content.decode()
    done = operator.post(url, {"confirmed": "yes", "note": "test data"}, follow=True)

    assert "Discard all…" in listing
    assert "1 row matches the filter" in asked
    assert "1 discarded" in done.content.decode()
    assert set(Job.objects.values_list("status", flat=True)) == {"discarded", "succeeded"}
    dead_event.refresh_from_db()
    assert dead_event.status == "ignored"
    page = operator.get(f"/admin/billing/stripeevent/{dead_event.pk}/change/").content.decode()
    assert 'status-discarded">discarded<' in page
    assert JobAction.objects.get().note.endswith(": test data")


def test_the_mail_queue_list_renders_read_only(admin_client):
    response = admin_client.get("/admin/mail/email/")

    assert response.status_code == 200
    assert "/admin/mail/email/add/" not in response.content.decode()
