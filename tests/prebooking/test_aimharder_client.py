"""The AimHarder client and its answer classification, against the fake AimHarder."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from prebooking.providers.aimharder import client as aimharder
from prebooking.providers.aimharder.client import AimHarderClient, AimHarderError, LoginFailed
from prebooking.providers.base import BOOKED, NOT_OPEN, REJECTED, RETRY, WAITLISTED
from tests.prebooking.conftest import AIMHARDER_EMAIL, AIMHARDER_PASSWORD


@pytest.fixture
def client(fake_aimharder):
    http = AimHarderClient()
    yield http
    http.close()


def _answer(body: dict, status: int = 200):
    return aimharder.classify_book(status, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("body", "outcome", "kind"),
    [
        ({"bookState": 1, "id": "77"}, BOOKED, "booked"),
        ({"bookState": 0}, WAITLISTED, "waitlisted"),
        ({"bookState": -1, "errorMssg": "Completa"}, REJECTED, "full"),
        ({"bookState": -2}, REJECTED, "no_credits"),
        ({"bookState": -4}, NOT_OPEN, "too_early"),
        ({"bookState": -12, "errorMssgLang": "ERROR_ANTELACION_CLIENTE"}, NOT_OPEN, "too_early"),
        ({"bookState": -12, "errorMssgLang": "NOPUEDESRESERVAMISMAHORA"}, BOOKED, "already_booked"),
        ({"bookState": -12, "errorMssgLang": "HASSUPERADOLIMITCONTR"}, REJECTED, "plan_limit"),
        (
            {"errorMssg": "No puedes reservar con más de 4 días de antelación"},
            NOT_OPEN,
            "too_early",
        ),
        ({"logout": 1}, RETRY, "session_expired"),
    ],
)
def test_book_answers_are_read_as_the_bots_tabulate_them(body, outcome, kind):
    result = _answer(body)

    assert (result.outcome, result.kind) == (outcome, kind)


def test_a_200_without_book_state_1_is_never_booked():
    assert _answer({"ok": True}).outcome == RETRY
    assert _answer({"bookState": "-5"}).outcome == REJECTED


def test_login_reads_the_member_and_boxes_from_the_roles(client):
    session = client.login(AIMHARDER_EMAIL, AIMHARDER_PASSWORD, aimharder.new_fingerprint())

    assert session.name == "Ana Member"
    assert [(box.slug, box.boid, box.name) for box in session.boxes] == [
        ("crossfit-sur", "4321", "CrossFit Sur")
    ]
    assert session.cookie


def test_wrong_password_is_a_login_failure(client):
    with pytest.raises(LoginFailed, match="did not accept"):
        client.login(AIMHARDER_EMAIL, "wrong", aimharder.new_fingerprint())


def test_too_many_failures_lock_the_account(client, fake_aimharder):
    for _ in range(fake_aimharder.LOCK_AFTER):
        with pytest.raises(LoginFailed):
            client.login(AIMHARDER_EMAIL, "wrong", aimharder.new_fingerprint())

    with pytest.raises(LoginFailed, match="locked"):
        client.login(AIMHARDER_EMAIL, AIMHARDER_PASSWORD, aimharder.new_fingerprint())


def test_aimharder_down_is_unavailable_not_a_refusal(client, fake_aimharder):
    fake_aimharder.down = True

    with pytest.raises(AimHarderError) as caught:
        client.login(AIMHARDER_EMAIL, AIMHARDER_PASSWORD, aimharder.new_fingerprint())

    assert caught.value.unavailable
    assert not isinstance(caught.value, LoginFailed)


def test_classes_of_a_day_and_booking_then_cancelling(client, fake_aimharder):
    starts = timezone.now() + timedelta(days=1)
    fake_class = fake_aimharder.add_class(
        "crossfit-sur", starts, timezone.now() - timedelta(hours=1), "WOD", capacity=3
    )
    session = client.login(AIMHARDER_EMAIL, AIMHARDER_PASSWORD, aimharder.new_fingerprint())
    day = datetime.strptime(fake_class.day, "%Y%m%d").date()

    booked = client.book(session, "crossfit-sur", fake_class.session_id, fake_class.day)
    [row] = [
        c
        for c in client.classes(session, "crossfit-sur", "4321", day)
        if c.session_id == fake_class.session_id
    ]

    assert booked.outcome == BOOKED
    assert (row.name, row.taken, row.capacity, row.book_state) == ("WOD", 1, 3, 1)
    assert client.cancel(session, "crossfit-sur", row.reservation_id, late=False) == 1
    assert fake_class.booked == {}
