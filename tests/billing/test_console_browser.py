"""The 3 a.m. story in a real browser: log in, find the dead event, read why, fix, replay."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import StripeEvent
from jobs.testing import run_due_jobs
from tests.billing.conftest import make_event
from tests.billing.helpers import deliver, drain

MISSING_USER_ID = 424242


@pytest.fixture
def operator(django_user_model):
    user = django_user_model.objects.create_user(
        "night-shift", password="pw-night-12345", is_staff=True
    )
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_stripeevent", "replay_stripeevent"])
    )
    return user


@pytest.fixture
def dead_event(client):
    """A customer.created naming a user who does not exist yet: it fails until attempts run out.

    Its attempts run three hours ago, on their backoff schedule, so they sit in the past.
    """
    start = timezone.now() - timedelta(hours=3)
    customer = {
        "id": "cus_night",
        "object": "customer",
        "email": "night@example.com",
        "metadata": {"user_id": str(MISSING_USER_ID)},
    }
    deliver(client, make_event("customer.created", customer), start)
    drain(until=start + timedelta(hours=2))
    event = StripeEvent.objects.get(stripe_id__startswith="evt_")
    assert (event.status, event.job.attempts) == ("dead", 5)
    return event


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_find_a_dead_event_read_why_fix_it_replay_it_and_see_it_processed(
    browser_page, operator, dead_event, django_user_model
):
    page = browser_page
    page.goto("/admin/login/?next=/admin/dashboard/")
    page.fill("input[name=username]", "night-shift")
    page.fill("input[name=password]", "pw-night-12345")
    page.click("input[type=submit]")

    page.click("a.dash-card:has-text('Dead events')")  # the dashboard's way in
    expect(page).to_have_url(re.compile(r"status__exact=dead"))
    page.click(f"a:text-is('{dead_event.stripe_id}')")
    traceback = page.locator("pre.traceback").first
    expect(traceback).to_contain_text("Traceback (most recent call last)")
    expect(traceback).to_contain_text("User matching query does not exist")

    django_user_model.objects.create_user("night-customer", id=MISSING_USER_ID)  # the fix

    page.go_back()
    page.check(f"input[name=_selected_action][value='{dead_event.pk}']")
    page.select_option("select[name=action]", "replay")
    page.click("button[name=index]")
    # The answer streams in: a web-first assertion waits for the message, not just its list.
    expect(page.locator("ul.messagelist")).to_contain_text("1 queued for replay")

    run_due_jobs()
    page.goto(f"/admin/billing/stripeevent/{dead_event.pk}/change/")
    expect(page.locator(".event-actions .status-pill")).to_have_text("processed")
    actions = page.locator(".field-staff_actions")
    expect(actions).to_contain_text("night-shift")
    expect(actions).to_contain_text("Replay")
    expect(actions).to_contain_text("attempt 6: succeeded")
