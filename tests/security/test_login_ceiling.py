"""Distributed guessing: one account's failed log-ins from many addresses hit a ceiling that
slows new browsers down, while the owner's own browser is not slowed and nobody is locked out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from accounts.ceiling import DEVICE_COOKIE

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LOGIN = "/accounts/login/"
PASSWORD = "correct horse battery"  # tests/conftest.py's user


@pytest.fixture(autouse=True)
def ceiling(settings):
    settings.LOGIN_ACCOUNT_FAILURE_RATE = "10/h"
    settings.LOGIN_ACCOUNT_SLOW_RATE = "1/m"


def attempt(client, username: str, password: str, n: int):
    """A log-in from its own address (each address stays under axes' per-pair lock)."""
    return client.post(
        LOGIN,
        {"username": username, "password": password},
        REMOTE_ADDR=f"198.51.{n // 250}.{n % 250}",
    )


def guess_from_many_addresses(client, username: str, times: int) -> list[int]:
    return [attempt(client, username, "wrong guess", n).status_code for n in range(times)]


def test_below_the_ceiling_failed_logins_from_many_addresses_answer_normally(client, user):
    with time_machine.travel(T0, tick=False):
        statuses = guess_from_many_addresses(client, "alice", 9)

    assert statuses == [200] * 9


def test_past_the_ceiling_new_browsers_get_one_attempt_per_slow_window(client, user):
    with time_machine.travel(T0, tick=False):
        guess_from_many_addresses(client, "alice", 10)
        first = attempt(client, "alice", "wrong guess", 500)
        second = attempt(client, "ALICE", "another guess", 501)

    assert first.status_code == 200  # let through, and failed
    assert second.status_code == 429
    assert "Log-ins to this account are slowed" in second.content.decode()


def test_the_owner_is_slowed_not_locked_out(client, user):
    with time_machine.travel(T0, tick=False):
        guess_from_many_addresses(client, "alice", 12)
    with time_machine.travel(T0 + timedelta(minutes=2), tick=False):
        response = attempt(client, "alice", PASSWORD, 600)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_a_browser_that_signed_in_before_is_not_slowed(client, user):
    with time_machine.travel(T0, tick=False):
        assert attempt(client, "alice", PASSWORD, 700).status_code == 302
        device = client.cookies[DEVICE_COOKIE].value
        client.logout()  # the test client drops every cookie: the browser keeps this one
        client.cookies[DEVICE_COOKIE] = device
        guess_from_many_addresses(Client(), "alice", 30)

        response = attempt(client, "alice", PASSWORD, 701)

    assert response.status_code == 302


def test_the_ceiling_applies_to_the_admin_login_too(client, admin_user):
    with time_machine.travel(T0, tick=False):
        statuses = [
            client.post(
                "/admin/login/",
                {"username": "admin", "password": "wrong"},
                REMOTE_ADDR=f"192.0.2.{n}",
            ).status_code
            for n in range(12)
        ]

    assert statuses[:11] == [200] * 11
    assert statuses[11] == 429
