"""A GET changes nothing and calls out to nobody: every route of the site, fetched with GET by
a signed-in member who has a Stripe customer, a linked AimHarder account and a prebooking.

Allowed on a GET: the session, the database cache and rate-limit counters (bookkeeping, not
state), and AimHarder's class list on the two pages that show it (cached, rate limited).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import URLResolver, get_resolver

from billing.models import Customer
from tests.billing.conftest import fake_stripe as stripe_api  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

BOOKKEEPING = ("django_session", "django_cache", "rate_limit_counter")
SHOW_THE_CLASS_LIST = {"prebookings/classes/", "prebookings/classes/pick/"}


def routes(patterns=None, prefix: str = ""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern)


def rows_written() -> int:
    """Rows inserted, updated or deleted in this transaction, bookkeeping aside."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)"
            " FROM pg_stat_xact_user_tables WHERE relname <> ALL(%s)",
            [list(BOOKKEEPING)],
        )
        return cursor.fetchone()[0]


def test_no_get_writes_state_or_calls_stripe_or_the_gym_unasked(
    client,
    user,
    stripe_api,  # noqa: F811 (the fixture imported above)
    fake_aimharder,
    linked_account,
    gym_class,
    aimharder_prebooking,
):
    Customer.objects.create(stripe_id="cus_audit", user=user)
    prebooking = aimharder_prebooking(gym_class(opens_in=3600))
    box = linked_account.boxes.get()
    listings: list = []
    answer = fake_aimharder.bookings
    fake_aimharder.bookings = lambda *args: listings.append(args) or answer(*args)
    client.force_login(user)
    values = {
        "<int:prebooking_id>": str(prebooking.pk),
        "<int:account_id>": str(linked_account.pk),
        "<int:box_id>": str(box.pk),
        "<uidb64>": "MQ",
        "<token>": "not-a-token",
    }
    day = prebooking.payload["day"]
    query = {
        "prebookings/classes/": f"?box={box.pk}&day={day[:4]}-{day[4:6]}-{day[6:]}",
        "prebookings/classes/pick/": (
            f"?box={box.pk}&day={day[:4]}-{day[4:6]}-{day[6:]}"
            f"&session_id={prebooking.payload['session_id']}"
        ),
    }
    visited, writers, callers = [], [], []
    for route in sorted(set(routes())):
        if route.startswith("admin/") or route == "accounts/logout/":
            continue  # the admin is staff's (read-only lists); logging out is a POST in Django 5
        path = route
        for placeholder, value in values.items():
            path = path.replace(placeholder, value)
        before, stripe_calls, gym_calls = rows_written(), len(stripe_api.requests), len(listings)
        status = client.get("/" + path + query.get(route, "")).status_code
        visited.append((route, status))
        if rows_written() != before:
            writers.append(route)
        if len(stripe_api.requests) != stripe_calls:
            callers.append(route)
        if len(listings) != gym_calls and route not in SHOW_THE_CLASS_LIST:
            callers.append(route)

    assert all(status < 500 for _, status in visited), visited
    assert writers == []
    assert callers == []
    assert {route for route, _ in visited} >= {"billing/portal/", "prebookings/classes/"}
