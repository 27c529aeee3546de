"""The member sees what happened: outcomes in words, polled as the page's own fragment,
cancelled apart from past."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from prebooking import services
from prebooking.models import Prebooking

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def finish(prebooking: Prebooking, status: str, response: dict, error: str = "") -> None:
    """The row as the firing code leaves it after the gym answered."""
    now = timezone.now()
    Prebooking.objects.filter(pk=prebooking.pk).update(
        status=status,
        fired_at=now,
        lateness_ms=1.0,
        attempts=1,
        finished_at=now,
        response=response,
        error=error,
    )


def test_the_polled_list_is_the_pages_own_region_with_my_prebookings_only(
    signed_in, make_prebooking, django_user_model
):
    mine = make_prebooking(opens_in=3600, class_id="mine-full")
    finish(mine, "failed", {"status_code": 409, "answer": {"error": "class_full"}}, "class_full")
    make_prebooking(
        opens_in=3600,
        class_id="theirs",
        owner=django_user_model.objects.create_user("mallory", password="x"),
    )

    answer = signed_in.get("/prebookings/status.json").json()
    page = signed_in.get("/prebookings/").content.decode()

    assert "Not booked: the class is full (the gym answered 409)." in answer["html"]
    assert "mine-full" in answer["html"] and "theirs" not in answer["html"]
    assert answer["html"] in page  # the same fragment, from the same context


def test_the_polled_card_answers_for_my_own_prebooking_only(
    signed_in, make_prebooking, django_user_model
):
    theirs = make_prebooking(
        opens_in=3600, owner=django_user_model.objects.create_user("mallory", password="x")
    )

    assert signed_in.get(f"/prebookings/{theirs.pk}/status.json").status_code == 404


def test_detail_shows_the_gyms_answer_in_words_not_a_python_dict(signed_in, make_prebooking):
    prebooking = make_prebooking(opens_in=3600)
    finish(
        prebooking, "succeeded", {"status_code": 201, "answer": {"status": "booked", "booking": 7}}
    )

    page = signed_in.get(f"/prebookings/{prebooking.pk}/").content.decode()

    assert "Booked (booking 7)." in page
    assert "{&#x27;" not in page and "{'" not in page
    assert "data-cancel" not in page


def test_a_cancelled_prebooking_still_ahead_is_listed_as_cancelled_not_past(
    signed_in, make_prebooking
):
    ahead = make_prebooking(opens_in=7200, class_id="cancelled-ahead")
    services.cancel_prebooking(ahead.pk)

    page = signed_in.get("/prebookings/").content.decode()

    cancelled_section = page.index("<h2>Cancelled</h2>")
    past_section = page.index("<h2>Past</h2>")
    assert cancelled_section < page.index("cancelled-ahead") < past_section


def test_status_endpoint_needs_a_login(client):
    response = client.get("/prebookings/status.json?ids=1")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_expired_prebooking_says_why_nothing_was_sent(signed_in, make_prebooking):
    prebooking = make_prebooking(opens_in=3600)
    Prebooking.objects.filter(pk=prebooking.pk).update(
        status="expired", finished_at=timezone.now() + timedelta(seconds=1), error="window closed"
    )

    page = signed_in.get(f"/prebookings/{prebooking.pk}/").content.decode()

    assert "Not sent: window closed." in page


@pytest.mark.parametrize(
    ("lateness", "words"),
    [
        (-0.4, "0.40 ms before opening by our clock, timed to arrive just after opening"),
        (4.83, "4.83 ms after opening by our clock, timed to arrive just after opening"),
    ],
)
def test_the_send_time_says_before_or_after_opening_without_contradicting_itself(
    signed_in, make_prebooking, lateness, words
):
    prebooking = make_prebooking(opens_in=3600)
    finish(prebooking, "succeeded", {"status_code": 201, "timing": {"targeted": True}})
    Prebooking.objects.filter(pk=prebooking.pk).update(lateness_ms=lateness)

    page = signed_in.get(f"/prebookings/{prebooking.pk}/").content.decode()

    assert words in page
    assert "sent early" not in page
