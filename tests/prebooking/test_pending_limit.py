"""One pending-prebooking limit, the plan's, on every path, and it holds under concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from billing.models import Customer, Subscription
from prebooking import services
from prebooking.models import Prebooking

LIMIT = 3


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _form(class_id: str) -> dict:
    opens = timezone.now() + timedelta(days=1)
    return {
        "provider": "demo",
        "class_id": class_id,
        "class_starts_at": (opens + timedelta(hours=2)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M"),
        "opens_at": opens.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "time_zone": "UTC",
    }


def _subscribe(user, settings, limit: int) -> None:
    settings.BILLING_PLANS = {"basic": "price_b"}
    settings.BILLING_PLAN_MAX_PENDING = {"basic": limit}
    customer = Customer.objects.create(stripe_id=f"cus_{user.pk}", user=user)
    Subscription.objects.create(
        stripe_id=f"sub_{user.pk}",
        customer=customer,
        status="active",
        price_id="price_b",
        current_period_end=timezone.now() + timedelta(days=30),
    )


@pytest.mark.django_db(transaction=True)
def test_ten_simultaneous_posts_at_limit_minus_one_leave_the_limit_pending(user, settings):
    settings.PREBOOKING_MAX_PENDING = LIMIT
    for number in range(LIMIT - 1):
        services.create_prebooking(
            user, "demo", {"class_id": f"held-{number}"}, timezone.now() + timedelta(days=1)
        )
    start = threading.Barrier(10)
    answers: list[int] = []

    def post(number: int) -> None:
        browser = Client()
        browser.force_login(user)
        start.wait()
        try:
            answers.append(browser.post("/prebookings/new/", _form(f"race-{number}")).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Prebooking.objects.filter(owner=user, status="pending").count() == LIMIT
    assert sorted(answers).count(302) == 1


@pytest.mark.django_db
def test_the_service_refuses_past_the_plans_limit_whoever_calls_it(user, settings):
    settings.PREBOOKING_MAX_PENDING = 1
    _subscribe(user, settings, limit=2)
    opens = timezone.now() + timedelta(days=1)
    for number in range(2):
        services.create_prebooking(user, "demo", {"class_id": f"c{number}"}, opens)

    with pytest.raises(services.PendingLimitReached, match="You have 2 pending"):
        services.create_prebooking(user, "demo", {"class_id": "c3"}, opens)
    assert Prebooking.objects.filter(owner=user).count() == 2


@pytest.mark.django_db
def test_the_prebook_command_uses_the_plans_limit(user, settings):
    settings.PREBOOKING_MAX_PENDING = 5
    _subscribe(user, settings, limit=1)
    opens = (timezone.now() + timedelta(days=1)).isoformat()
    args = ["prebook", "--user", user.username, "--provider", "demo", "--opens-at", opens]
    call_command(*args, "--session-id", "first")

    with pytest.raises(CommandError, match="1 pending prebookings"):
        call_command(*args, "--session-id", "second")


@pytest.mark.django_db
def test_the_aimharder_picker_checks_the_plans_limit_not_another(
    client, user, settings, linked_account, gym_class
):
    settings.PREBOOKING_MAX_PENDING = 5
    _subscribe(user, settings, limit=1)
    services.create_prebooking(
        user, "demo", {"class_id": "held"}, timezone.now() + timedelta(days=1)
    )
    fake_class = gym_class(opens_in=3600, starts_in=86400)
    box = linked_account.boxes.get()
    box.hours_before = 20
    box.save()
    day = datetime.strptime(fake_class.day, "%Y%m%d").date().isoformat()
    client.force_login(user)

    response = client.post(
        "/prebookings/classes/pick/",
        {"box": box.pk, "day": day, "session_id": fake_class.session_id},
    )

    assert response.status_code == 400
    assert "You have 1 pending prebookings, the most allowed." in response.content.decode()
    assert Prebooking.objects.filter(owner=user).count() == 1
