"""/billing/ for a signed-in user: subscribe, top up and manage through the fake Stripe API.

Each test drives the pages over HTTP, checks what the app asked Stripe for, then delivers the
signed webhooks Stripe would send and looks at the page again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from billing.models import Customer, DunningCase, Subscription
from tests.billing.checkout_flow import (
    PLANS,
    completed,
    last_session,
    now,
    session_posted,
    subscription_created,
)
from tests.billing.conftest import make_event
from tests.billing.helpers import deliver, run_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_fake(fake_stripe, settings):
    settings.BILLING_PLANS = dict(PLANS)
    return fake_stripe


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def _webhooks(client, django_capture_on_commit_callbacks, *events: dict) -> None:
    """Deliver the events and run their jobs, committing (so the entitlements cache is cleared)."""
    with django_capture_on_commit_callbacks(execute=True):
        for event in events:
            deliver(client, event)
        run_at(datetime.fromtimestamp(events[-1]["created"], tz=UTC))


def _subscribe(client, fake, plan: str = "pro") -> dict:
    response = client.post("/billing/subscribe/", {"plan": plan})
    assert response.status_code == 302, response.content
    session = last_session(fake)
    assert response["Location"] == session["url"]
    return session


def _subscribed(client, fake, on_commit, plan: str = "pro") -> Customer:
    session = _subscribe(client, fake, plan)
    start = now()
    customer_id = session["customer"]
    _webhooks(
        client,
        on_commit,
        completed(session, start, subscription_id=f"sub_{customer_id}"),
        subscription_created(customer_id, PLANS[plan], start + 1),
    )
    return Customer.objects.get(stripe_id=customer_id)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/billing/"),
        ("post", "/billing/subscribe/"),
        ("post", "/billing/top-up/"),
        ("get", "/billing/portal/"),
        ("get", "/billing/success/"),
    ],
)
def test_the_billing_pages_ask_to_log_in_first(client, stripe_fake, method, url):
    response = getattr(client, method)(url)

    assert response.status_code == 302
    assert response["Location"].startswith(f"/accounts/login/?next={url}")
    assert stripe_fake.posted == []


def test_without_keys_in_development_the_page_says_how_to_set_them(signed_in, settings):
    settings.DEBUG = True
    settings.STRIPE_API_KEY = ""
    settings.BILLING_PLANS = {}

    page = signed_in.get("/billing/").content.decode()

    assert "STRIPE_API_KEY=sk_test_" in page
    assert "BILLING_PLANS=basic:price_...,pro:price_..." in page
    assert "Subscribe to" not in page


def test_subscribing_without_a_key_answers_503_and_calls_nobody(signed_in, settings):
    settings.STRIPE_API_KEY = ""
    settings.BILLING_PLANS = dict(PLANS)

    response = signed_in.post("/billing/subscribe/", {"plan": "pro"})

    assert response.status_code == 503
    assert "Payments are not set up on this server yet." in response.content.decode()
    assert not Customer.objects.exists()


def test_the_page_lists_the_plans_from_settings(signed_in, stripe_fake):
    page = signed_in.get("/billing/").content.decode()

    assert "Subscribe to Basic" in page
    assert "Subscribe to Pro" in page
    assert 'id="plan-name">Free<' in page
    assert 'id="pending-limit">20<' in page  # PREBOOKING_MAX_PENDING without a plan


def test_subscribe_creates_a_customer_and_a_subscription_checkout_for_the_user(
    signed_in, stripe_fake, user
):
    session = _subscribe(signed_in, stripe_fake, "pro")

    customer_form = dict(stripe_fake.posted)["/v1/customers"]
    assert customer_form["email"] == user.email
    assert customer_form["metadata[user_id]"] == str(user.pk)
    sent = session_posted(stripe_fake)
    assert sent["mode"] == "subscription"
    assert sent["line_items[0][price]"] == PLANS["pro"]
    assert sent["line_items[0][quantity]"] == "1"
    assert sent["client_reference_id"] == str(user.pk)
    assert sent["customer"] == session["customer"] == "cus_fake_1"
    assert sent["success_url"] == (
        "http://testserver/billing/success/?kind=subscription&session_id={CHECKOUT_SESSION_ID}"
    )
    assert sent["cancel_url"] == "http://testserver/billing/"
    assert Customer.objects.get(stripe_id="cus_fake_1").user == user


def test_a_user_whose_customer_stripe_deleted_gets_a_new_one(signed_in, stripe_fake, user):
    gone = Customer.objects.create(stripe_id="cus_gone", user=user, deleted=True)

    session = _subscribe(signed_in, stripe_fake, "basic")

    gone.refresh_from_db()
    assert gone.user is None
    assert Customer.objects.get(stripe_id=session["customer"]).user == user


def test_the_page_lets_forms_redirect_to_stripes_hosted_pages(signed_in, stripe_fake):
    policy = signed_in.get("/billing/")["Content-Security-Policy"]

    form_action = next(part for part in policy.split(";") if "form-action" in part)
    assert "https://checkout.stripe.com" in form_action
    assert "https://billing.stripe.com" in form_action


def test_subscribe_reuses_the_customer_the_user_already_has(signed_in, stripe_fake, user):
    Customer.objects.create(stripe_id="cus_known", user=user)

    _subscribe(signed_in, stripe_fake, "basic")

    assert [path for path, _ in stripe_fake.posted] == ["/v1/checkout/sessions"]
    assert session_posted(stripe_fake)["customer"] == "cus_known"
    assert session_posted(stripe_fake)["line_items[0][price]"] == PLANS["basic"]


def test_an_unknown_plan_is_refused_without_calling_stripe(signed_in, stripe_fake):
    response = signed_in.post("/billing/subscribe/", {"plan": "platinum"})

    assert response.status_code == 400
    assert "Choose one of the plans listed." in response.content.decode()
    assert stripe_fake.posted == []


def test_success_says_confirming_until_the_webhooks_link_the_subscription(
    signed_in, stripe_fake, user, django_capture_on_commit_callbacks
):
    session = _subscribe(signed_in, stripe_fake, "pro")
    success = f"/billing/success/?kind=subscription&session_id={session['id']}"

    waiting = signed_in.get(success).content.decode()
    assert "Confirming..." in waiting
    assert '<meta http-equiv="refresh"' in waiting

    start = now()
    _webhooks(
        signed_in,
        django_capture_on_commit_callbacks,
        completed(session, start, subscription_id="sub_cus_fake_1"),
        subscription_created("cus_fake_1", PLANS["pro"], start + 1),
    )

    done = signed_in.get(success).content.decode()
    assert 'id="plan-name">Pro<' in done
    assert 'id="pending-limit">200<' in done
    assert '<meta http-equiv="refresh"' not in done
    page = signed_in.get("/billing/").content.decode()
    assert 'id="plan-name">Pro<' in page
    assert "Renews on" in page
    assert "Subscribe to" not in page


def test_checkout_completed_links_a_customer_the_app_did_not_store(
    client, user, django_capture_on_commit_callbacks
):
    # The customer was created elsewhere (e.g. `stripe trigger`): client_reference_id names us.
    start = now()
    session = {
        "id": "cs_elsewhere",
        "object": "checkout.session",
        "mode": "subscription",
        "customer": "cus_elsewhere",
        "client_reference_id": str(user.pk),
        "metadata": {},
    }
    _webhooks(
        client,
        django_capture_on_commit_callbacks,
        completed(session, start, subscription_id="sub_cus_elsewhere"),
        subscription_created("cus_elsewhere", "price_x", start + 1),
    )

    assert Subscription.objects.get(stripe_id="sub_cus_elsewhere").customer.user == user


def test_a_second_subscription_is_refused_while_one_is_active(
    signed_in, stripe_fake, django_capture_on_commit_callbacks
):
    _subscribed(signed_in, stripe_fake, django_capture_on_commit_callbacks)
    sessions_before = len(stripe_fake.posted)

    response = signed_in.post("/billing/subscribe/", {"plan": "basic"})

    assert response.status_code == 409
    assert "change or cancel it with Manage billing" in response.content.decode()
    assert len(stripe_fake.posted) == sessions_before


@pytest.mark.parametrize(
    ("status", "error", "says"),
    [
        (400, {"type": "invalid_request_error", "message": "No such price"}, "refused the request"),
        (401, {"type": "invalid_request_error", "message": "Invalid API Key"}, "refused"),
        (500, {"type": "api_error", "message": "Internal"}, "is having trouble"),
    ],
)
def test_a_stripe_error_shows_a_message_and_changes_nothing(
    signed_in, stripe_fake, status, error, says
):
    stripe_fake.fail_with = (status, error)

    response = signed_in.post("/billing/subscribe/", {"plan": "pro"})

    assert response.status_code == 502
    assert says in response.content.decode()
    assert "Nothing was charged" in response.content.decode()
    assert not Customer.objects.exists()


def test_stripe_unreachable_shows_a_message_and_changes_nothing(signed_in, stripe_fake, settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens on the discard port

    response = signed_in.post("/billing/subscribe/", {"plan": "pro"})

    assert response.status_code == 502
    assert "We could not reach Stripe" in response.content.decode()
    assert not Customer.objects.exists()


def test_a_user_creating_sessions_in_a_loop_is_stopped_before_stripe(
    signed_in, stripe_fake, settings
):
    settings.BILLING_CHECKOUT_RATE = "2/h"
    for _ in range(2):
        _subscribe(signed_in, stripe_fake, "pro")
    calls = len(stripe_fake.posted)

    response = signed_in.post("/billing/subscribe/", {"plan": "pro"})

    assert response.status_code == 429
    assert len(stripe_fake.posted) == calls


def test_top_ups_need_a_plan_with_the_wallet_and_say_which(signed_in, stripe_fake):
    response = signed_in.post("/billing/top-up/", {"amount": "10"})

    assert response.status_code == 403
    assert "Wallet top-ups: included in the Pro plan" in response.content.decode()
    assert stripe_fake.posted == []


def test_a_top_up_is_a_payment_checkout_marked_for_the_wallet_and_lands_in_it(
    signed_in, stripe_fake, user, django_capture_on_commit_callbacks
):
    customer = _subscribed(signed_in, stripe_fake, django_capture_on_commit_callbacks)

    response = signed_in.post("/billing/top-up/", {"amount": "12.50"})

    assert response.status_code == 302
    session = last_session(stripe_fake)
    assert response["Location"] == session["url"]
    sent = session_posted(stripe_fake)
    assert sent["mode"] == "payment"
    assert sent["customer"] == customer.stripe_id
    assert sent["client_reference_id"] == str(user.pk)
    assert sent["line_items[0][price_data][unit_amount]"] == "1250"
    assert sent["line_items[0][price_data][currency]"] == "eur"
    assert sent["metadata[wallet_top_up]"] == "true"
    assert sent["payment_intent_data[metadata][wallet_top_up]"] == "true"
    success = f"/billing/success/?kind=top_up&session_id={session['id']}"
    assert "Confirming..." in signed_in.get(success).content.decode()

    _webhooks(signed_in, django_capture_on_commit_callbacks, completed(session, now()))

    assert "Wallet topped up" in signed_in.get(success).content.decode()
    assert "Balance: <strong>12.50 EUR</strong>" in signed_in.get("/billing/").content.decode()


@pytest.mark.parametrize("amount", ["4.99", "500.01", "ten"])
def test_a_top_up_outside_the_bounds_is_refused_without_calling_stripe(
    signed_in, stripe_fake, django_capture_on_commit_callbacks, amount
):
    _subscribed(signed_in, stripe_fake, django_capture_on_commit_callbacks)
    calls = len(stripe_fake.posted)

    response = signed_in.post("/billing/top-up/", {"amount": amount})

    assert response.status_code == 400
    assert len(stripe_fake.posted) == calls


def test_manage_opens_a_portal_session_for_the_users_customer(signed_in, stripe_fake, user):
    Customer.objects.create(stripe_id="cus_known", user=user)

    response = signed_in.post("/billing/portal/")

    assert response.status_code == 302
    form = dict(stripe_fake.posted)["/v1/billing_portal/sessions"]
    assert form == {"customer": "cus_known", "return_url": "http://testserver/billing/"}
    assert response["Location"].startswith(f"{stripe_fake.url}/portal/bps_fake_")


def test_stripe_down_while_opening_the_portal_shows_a_message(signed_in, stripe_fake, user):
    Customer.objects.create(stripe_id="cus_known", user=user)
    stripe_fake.fail_with = (503, {"type": "api_error", "message": "Service unavailable"})

    response = signed_in.post("/billing/portal/")

    assert response.status_code == 502
    assert "is having trouble" in response.content.decode()


def test_the_portal_link_of_an_email_shows_the_manage_button_and_calls_nobody(
    signed_in, stripe_fake, user
):
    Customer.objects.create(stripe_id="cus_known", user=user)

    response = signed_in.get("/billing/portal/")

    assert response.status_code == 200
    assert 'id="manage"' in response.content.decode()
    assert stripe_fake.posted == []


def test_a_portal_post_without_csrf_token_is_refused(stripe_fake, user):
    Customer.objects.create(stripe_id="cus_known", user=user)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    response = browser.post("/billing/portal/")

    assert response.status_code == 403
    assert stripe_fake.posted == []


def test_portal_sessions_are_rate_limited_per_user(signed_in, stripe_fake, user, settings):
    Customer.objects.create(stripe_id="cus_known", user=user)
    settings.BILLING_CHECKOUT_RATE = "2/h"

    answers = [signed_in.post("/billing/portal/").status_code for _ in range(3)]

    assert answers == [302, 302, 429]
    assert len(stripe_fake.posted) == 2


def test_manage_without_a_customer_says_to_subscribe_first(signed_in, stripe_fake):
    response = signed_in.post("/billing/portal/")

    assert response.status_code == 404
    assert "subscribe to a plan first" in response.content.decode()
    assert stripe_fake.posted == []


def test_the_page_shows_the_card_the_invoices_and_a_failed_payment_with_its_deadline(
    signed_in, stripe_fake, settings, django_capture_on_commit_callbacks
):
    customer = _subscribed(signed_in, stripe_fake, django_capture_on_commit_callbacks)
    invoice = {
        "id": "in_failed",
        "object": "invoice",
        "customer": customer.stripe_id,
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": f"sub_{customer.stripe_id}"},
        },
        "status": "open",
        "amount_due": 2900,
        "amount_paid": 0,
        "currency": "eur",
        "attempt_count": 1,
        "hosted_invoice_url": "https://invoice.stripe.test/in_failed",
    }
    card = {
        "id": "pm_visa",
        "object": "payment_method",
        "customer": customer.stripe_id,
        "type": "card",
        "card": {"brand": "visa", "last4": "4242"},
    }
    at = now()
    _webhooks(
        signed_in,
        django_capture_on_commit_callbacks,
        make_event("payment_method.attached", card, created=at),
        make_event("invoice.payment_failed", invoice, created=at + 1),
    )

    page = signed_in.get("/billing/").content.decode()
    case = DunningCase.objects.get()
    pay_by = (case.opened_at + timedelta(days=settings.BILLING_DUNNING_CANCEL_DAY)).date()
    assert "Visa ending 4242" in page
    assert f"Update your card by <strong>{pay_by.isoformat()}</strong>" in page
    assert 'href="https://invoice.stripe.test/in_failed"' in page
    assert "29.00 EUR" in page


def test_a_trial_shows_its_end_and_a_cancellation_its_last_day(signed_in, stripe_fake, user):
    customer = Customer.objects.create(stripe_id="cus_known", user=user)
    end = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
    subscription = Subscription.objects.create(
        stripe_id="sub_trial",
        customer=customer,
        status="trialing",
        price_id=PLANS["basic"],
        trial_end=end,
        current_period_end=end,
    )
    assert "Trial ends on 2027-01-15." in signed_in.get("/billing/").content.decode()

    Subscription.objects.filter(pk=subscription.pk).update(
        status="active", cancel_at_period_end=True
    )
    assert "Canceled: ends on 2027-01-15." in signed_in.get("/billing/").content.decode()


def test_confirming_in_development_says_what_to_check(signed_in, settings):
    settings.DEBUG = True

    page = signed_in.get(
        "/billing/success/?kind=subscription&session_id=cs_1", HTTP_HOST="localhost:8123"
    ).content.decode()

    # the address this very page came from, whatever PORT the web serves on
    assert "stripe listen --forward-to localhost:8123/billing/webhooks/stripe/" in page


def test_confirming_claims_no_payment_it_has_not_seen(signed_in):
    page = signed_in.get("/billing/success/?kind=subscription&session_id=cs_1").content.decode()

    assert "Confirming..." in page
    assert "has your payment" not in page
    assert "nothing was charged" in page


def test_the_billing_page_reads_a_fixed_number_of_queries(
    signed_in, stripe_fake, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    _subscribed(signed_in, stripe_fake, django_capture_on_commit_callbacks)

    signed_in.get("/billing/")  # fills the entitlements cache

    # session, user, customer, cached plan, subscription, dunning, card, invoices, wallet x2
    with django_assert_max_num_queries(10):
        assert signed_in.get("/billing/").status_code == 200
