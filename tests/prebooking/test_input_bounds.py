"""Absurd dates: refused by the form with a reason, and a row that holds one anyway breaks no
admin page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from prebooking.models import DemoGymClass, Prebooking
from tests.prebooking.test_views import _form, _local

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def test_class_at_the_end_of_year_9999_in_honolulu_is_refused(signed_in):
    response = signed_in.post(
        "/prebookings/new/",
        _form(class_starts_at="9999-12-31T23:59:59", time_zone="Pacific/Honolulu"),
    )

    assert response.status_code == 200
    assert "Enter a date before the year 9999." in response.content.decode()
    assert not Prebooking.objects.exists()
    assert not DemoGymClass.objects.exists()


def test_opening_at_the_end_of_year_9999_in_honolulu_is_refused(signed_in):
    response = signed_in.post(
        "/prebookings/new/",
        _form(opens_at="9999-12-31T23:59:59", time_zone="Pacific/Honolulu"),
    )

    assert response.status_code == 200
    assert "Enter a date before the year 9999." in response.content.decode()
    assert not Prebooking.objects.exists()


def test_class_long_after_booking_opens_is_refused(signed_in, settings):
    opens = timezone.now() + timedelta(days=1)
    response = signed_in.post(
        "/prebookings/new/",
        _form(opens_at=_local(opens), class_starts_at=_local(opens + timedelta(days=15))),
    )

    assert "The class must start within 14 days of booking opening." in response.content.decode()
    assert not Prebooking.objects.exists()


def test_too_soon_message_says_the_minimum(signed_in, settings):
    settings.PREBOOKING_MIN_AHEAD_SECONDS = 5
    response = signed_in.post(
        "/prebookings/new/", _form(opens_at=_local(timezone.now() + timedelta(seconds=2)))
    )

    assert "too soon: it must be at least 5 seconds from now." in response.content.decode()
    assert not Prebooking.objects.exists()


def test_admin_list_and_delete_work_with_a_class_past_year_9999(admin_client):
    with connection.cursor() as cursor:  # as the old form let one in
        cursor.execute(
            "INSERT INTO prebooking_demogymclass (class_id, name, opens_at, starts_at,"
            " capacity, fail_next) VALUES ('absurd', '', now(), '10000-01-01 09:59:59+00', 0, 0)"
            " RETURNING id"
        )
        pk = cursor.fetchone()[0]

    listed = admin_client.get("/admin/prebooking/demogymclass/")
    page = admin_client.get(f"/admin/prebooking/demogymclass/{pk}/change/")
    deleted = admin_client.post(
        "/admin/prebooking/demogymclass/",
        {"action": "delete_selected", "_selected_action": [pk], "post": "yes"},
    )

    assert listed.status_code == 200
    assert "absurd" in listed.content.decode()
    assert "9999" in listed.content.decode()
    assert page.status_code == 200
    assert deleted.status_code == 302
    assert not DemoGymClass.objects.exists()
