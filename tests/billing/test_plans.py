"""Plans gate something real: the pending-prebooking limit, features, and the e-mails' links."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils import timezone

from billing.entitlements import entitlements, pending_prebooking_limit, requires_feature
from billing.models import Customer, Subscription
from jobs.testing import run_due_jobs
from mail.services import queue_email
from prebooking.models import Prebooking

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _subscribe(user, price_id: str, status: str = "active") -> None:
    customer = Customer.objects.create(stripe_id=f"cus_{user.pk}", user=user)
    Subscription.objects.create(
        stripe_id=f"sub_{user.pk}",
        customer=customer,
        status=status,
        price_id=price_id,
        current_period_end=timezone.now() + timedelta(days=30),
    )


def _prebook(client, class_id: str):
    opens = timezone.now() + timedelta(days=1)
    return client.post(
        "/prebookings/new/",
        {
            "provider": "demo",
            "class_id": class_id,
            "class_starts_at": (opens + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S"),
            "opens_at": opens.strftime("%Y-%m-%dT%H:%M:%S"),
            "time_zone": "UTC",
        },
    )


def test_the_plan_of_a_price_comes_from_billing_plans(user, settings):
    settings.BILLING_PLANS = {"basic": "price_b", "pro": "price_p"}
    _subscribe(user, "price_p")

    assert entitlements(user.pk) == {
        "plan": "pro",
        "status": "active",
        "features": ["prebooking", "priority_firing", "wallet"],
    }


def test_a_plan_raises_the_pending_prebooking_limit(client, user, settings):
    settings.PREBOOKING_MAX_PENDING = 1
    settings.BILLING_PLANS = {"basic": "price_b"}
    settings.BILLING_PLAN_MAX_PENDING = {"basic": 2}
    client.force_login(user)
    assert _prebook(client, "first").status_code == 302
    refused = _prebook(client, "second")
    assert "You have 1 pending prebookings, the most allowed." in refused.content.decode()

    assert "up to 1 pending" in client.get("/prebookings/new/").content.decode()

    _subscribe(user, "price_b")
    cache.clear()  # a handler would invalidate it on commit
    assert "up to 2 pending" in client.get("/prebookings/new/").content.decode()

    assert _prebook(client, "second").status_code == 302
    refused = _prebook(client, "third")
    assert "You have 2 pending prebookings, the most allowed." in refused.content.decode()
    assert Prebooking.objects.filter(owner=user).count() == 2


def test_a_past_due_subscription_keeps_its_limit_but_a_canceled_one_does_not(user, settings):
    settings.BILLING_PLANS = {"pro": "price_p"}
    settings.BILLING_PLAN_MAX_PENDING = {"pro": 200}
    _subscribe(user, "price_p", status="past_due")
    assert pending_prebooking_limit(user.pk) == 200

    Subscription.objects.update(status="canceled")
    cache.clear()
    assert pending_prebooking_limit(user.pk) == settings.PREBOOKING_MAX_PENDING


def test_requires_feature_names_the_plan_that_has_it(user, settings):
    settings.BILLING_PLANS = {"basic": "price_b", "pro": "price_p"}
    settings.BILLING_PLAN_FEATURES = {"free": [], "basic": [], "pro": ["priority_firing"]}
    view = requires_feature("priority_firing")(lambda request: HttpResponse("in"))
    request = RequestFactory().get("/somewhere/")
    request.user = user

    refused = view(request)
    assert refused.status_code == 403
    assert "Priority firing: included in the Pro plan" in refused.content.decode()

    _subscribe(user, "price_p")
    cache.clear()
    assert view(request).content == b"in"


@pytest.mark.parametrize(
    ("template", "context", "link"),
    [
        ("trial_ending", {"plan": "pro", "trial_end": "2026-12-24"}, "/billing/portal/"),
        ("subscription_canceled", {"plan": "pro", "reason": ""}, "/billing/"),
    ],
)
def test_email_links_point_at_the_page_they_speak_of(settings, mailbox, template, context, link):
    settings.SITE_URL = "https://prebook.test"
    queue_email(f"test:{template}", template, to="dana@example.com", context=context)
    run_due_jobs(queue="default")

    html = mailbox[0].alternatives[0][0]
    assert f'href="https://prebook.test{link}"' in html
    assert f"https://prebook.test{link}\n" in mailbox[0].body
