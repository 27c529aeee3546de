"""AimHarder prebookings fired at the instant (and retried) against the fake AimHarder."""

from __future__ import annotations

import itertools

import pytest

from prebooking import firing
from prebooking.models import Prebooking
from tests.prebooking.conftest import fire_instant

pytestmark = pytest.mark.django_db(transaction=True)


def _fired(prebooking) -> Prebooking:
    prebooking.refresh_from_db()
    return prebooking


def test_a_class_is_booked_at_the_instant_and_its_reservation_kept(
    gym_class, aimharder_prebooking, fake_aimharder
):
    fake_class = gym_class(opens_in=1.2, capacity=5)
    prebooking = aimharder_prebooking(fake_class)

    assert fire_instant(prebooking.opens_at) == 1

    prebooking = _fired(prebooking)
    [arrival] = fake_aimharder.arrivals()
    assert prebooking.status == "succeeded"
    assert prebooking.response["kind"] == "booked"
    assert prebooking.response["answer"]["confirmed"] is True
    assert prebooking.response["answer"]["idres"] == next(iter(fake_class.booked.values()))
    assert arrival["arrived"] >= fake_class.opens_at
    assert prebooking.outcome_words == "Booked: your place is kept."


def test_too_early_is_retried_about_every_100_ms_until_the_gym_opens(
    gym_class, aimharder_prebooking, fake_aimharder
):
    fake_class = gym_class(opens_in=1.5)
    prebooking = aimharder_prebooking(fake_class, early=0.35)  # our instant is 350 ms early

    fire_instant(prebooking.opens_at)

    prebooking = _fired(prebooking)
    answers = [a["answer"] for a in fake_aimharder.arrivals()]
    arrived = [a["arrived"] for a in fake_aimharder.arrivals()]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrived)]
    assert prebooking.status == "succeeded"
    assert answers[:-1] == [-12] * (len(answers) - 1) and answers[-1] == 1
    assert 2 <= len(answers) <= 6
    assert prebooking.attempts == len(answers)
    # 100 ms after each answer (which itself waits out the fake's 50 ms fairness window)
    assert all(0.1 <= gap <= 0.4 for gap in gaps), gaps


def test_a_session_that_expired_while_waiting_logs_in_again_and_books(
    gym_class, aimharder_prebooking, fake_aimharder
):
    fake_class = gym_class(opens_in=1.2)
    prebooking = aimharder_prebooking(fake_class)
    fake_aimharder.session_seconds = 0.3  # the login made while preparing is dead at the instant

    fire_instant(prebooking.opens_at)

    prebooking = _fired(prebooking)
    assert [a["answer"] for a in fake_aimharder.arrivals()] == ["logout", 1]
    assert prebooking.status == "succeeded"


@pytest.mark.parametrize(
    ("setup", "status", "kind", "words"),
    [
        ({"capacity": 0, "waitlist_capacity": 0}, "failed", "full", "full"),
        ({"capacity": 0, "waitlist_capacity": 3}, "failed", "waitlisted", "waiting list"),
        ({"credits": 0}, "failed", "no_credits", "no credits"),
        ({"already": True}, "succeeded", "already_booked", "already had"),
    ],
)
def test_final_answers_of_the_gym_are_kept_in_words(
    gym_class, aimharder_prebooking, fake_aimharder, linked_account, setup, status, kind, words
):
    fake_class = gym_class(opens_in=-5, **{k: v for k, v in setup.items() if "capacity" in k})
    member = fake_aimharder.accounts["ana@example.com"]
    if "credits" in setup:
        member.credits = setup["credits"]
    if setup.get("already"):
        fake_class.booked[member.member_id] = "555"
    prebooking = aimharder_prebooking(fake_class)

    assert firing.fire_now(prebooking.pk)

    prebooking = _fired(prebooking)
    assert (prebooking.status, prebooking.response["kind"]) == (status, kind)
    assert words in prebooking.outcome_words.lower()
    assert prebooking.attempts == 1
