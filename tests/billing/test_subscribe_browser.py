"""Subscribing in a real browser: plan list, Stripe's (fake) Checkout, "confirming...", the plan.

The web server is pytest-django's live server, Stripe's API and hosted pages the local fake;
the webhooks are signed and posted to the live server, and their jobs run here as a worker.
"""

from __future__ import annotations

import copy
import json

import httpx
import pytest
from playwright.sync_api import expect

from jobs.testing import run_due_jobs
from tests.billing.checkout_flow import PLANS, completed, last_session, now, subscription_created
from tests.billing.conftest import WEBHOOK_URL, sign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _webhook(base: str, event: dict) -> None:
    body = json.dumps(event)
    response = httpx.post(
        f"{base}{WEBHOOK_URL}",
        content=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": sign(body)},
    )
    assert response.status_code == 200, response.text


def test_subscribe_see_confirming_then_the_plan_and_the_raised_prebooking_limit(
    browser_page, live_server, fake_stripe, settings, django_user_model
):
    settings.BILLING_PLANS = dict(PLANS)
    settings.BILLING_PLAN_MAX_PENDING = {"basic": 50, "pro": 200}
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["form-action"].append(fake_stripe.url)  # the fake's "hosted" pages
    settings.CONTENT_SECURITY_POLICY = policy
    django_user_model.objects.create_user("erin", "erin@example.com", "pw-erin-12345")
    page = browser_page

    page.goto("/accounts/login/?next=/billing/")
    page.fill("input[name=username]", "erin")
    page.fill("input[name=password]", "pw-erin-12345")
    page.click("main button[type=submit]")
    page.wait_for_url("**/billing/")
    expect(page.locator("#plan-name")).to_have_text("Free")
    expect(page.locator("#pending-limit")).to_have_text(str(settings.PREBOOKING_MAX_PENDING))

    page.click("button:text-is('Subscribe to Pro')")
    page.wait_for_url(f"{fake_stripe.url}/pay/**")
    page.click("#pay")
    page.wait_for_url("**/billing/success/**")
    expect(page.locator("h1")).to_have_text("Confirming...")

    session = last_session(fake_stripe)
    start = now()
    _webhook(live_server.url, completed(session, start, subscription_id="sub_erin"))
    event = subscription_created(session["customer"], PLANS["pro"], start + 1)
    event["data"]["object"]["id"] = "sub_erin"
    _webhook(live_server.url, event)
    run_due_jobs(queue="default")

    # The page refreshes itself until the subscription is linked.
    expect(page.locator("#plan-name")).to_have_text("Pro")
    expect(page.locator("#pending-limit")).to_have_text("200")
    page.goto("/billing/")
    expect(page.locator("#plan-name")).to_have_text("Pro")
    expect(page.locator("#pending-limit")).to_have_text("200")
    expect(page.locator("#plans")).to_have_count(0)
    page.goto("/prebookings/new/")
    expect(page.locator("#pending-limit-note")).to_contain_text("up to 200 pending")
