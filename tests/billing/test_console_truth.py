"""The event console tells the truth: a replay is queued (not done), its outcome shows when known,
and a dead event says what killed it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from billing.models import StripeEvent
from jobs.models import Job
from tests.billing.conftest import make_event
from tests.billing.helpers import deliver, run_at

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def after_replay() -> datetime:
    """When to run jobs after a staff action: replay() makes them due at the real clock's now."""
    return timezone.now() + timedelta(hours=1)


@pytest.fixture
def operator(client, django_user_model):
    user = django_user_model.objects.create_user("op", password="pw-x-12345", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_stripeevent", "replay_stripeevent", "view_job", "replay_job"]
        )
    )
    client.force_login(user)
    return client


def dead_event(client, obj: dict, event_type: str = "customer.created") -> StripeEvent:
    deliver(client, make_event(event_type, obj, created=int(T0.timestamp())), T0)
    run_at(T0)
    return StripeEvent.objects.get()


def test_replay_says_queued_and_the_page_shows_the_failed_outcome_once_known(client, operator):
    event = dead_event(client, {"id": "cus_1", "email": 5})  # permanent: email not a string

    queued = operator.post(f"/admin/billing/stripeevent/{event.pk}/act/replay/", follow=True)
    run_at(after_replay())
    known = operator.get(f"/admin/billing/stripeevent/{event.pk}/change/").content.decode()

    queued_page = queued.content.decode()
    assert f"Event {event.stripe_id} queued for replay." in queued_page
    assert "replayed." not in queued_page
    assert "Replay by op" in queued_page and "waiting for a worker" in queued_page
    assert 'http-equiv="refresh"' in queued_page
    assert "attempt 2: failed" in known
    assert 'http-equiv="refresh"' not in known
    event.refresh_from_db()
    assert (event.status, event.job.attempts) == ("dead", 2)  # the row agrees with its history


def test_event_dead_of_a_permanent_error_says_so_not_attempts_exhausted(client, operator):
    event = dead_event(client, {"id": "cus_1", "email": 5})

    page = operator.get(f"/admin/billing/stripeevent/{event.pk}/change/").content.decode()

    assert "permanent error after 1 attempt: retrying cannot help" in page
    assert "attempts exhausted" not in page


def test_discard_is_the_one_word_for_the_action_on_events(client, operator):
    event = dead_event(client, {"id": "cus_1", "email": 5})

    page = operator.get(f"/admin/billing/stripeevent/{event.pk}/change/").content.decode()
    done = operator.post(
        f"/admin/billing/stripeevent/{event.pk}/act/discard/", {"confirmed": "yes"}, follow=True
    )

    assert ">Discard…</a>" in page and ">Ignore<" not in page
    assert f"Event {event.stripe_id} discarded." in done.content.decode()
    assert Job.objects.get().status == "discarded"
