"""Failed logins lock the (account, address) pair (django-axes) for a while; an address trying
many accounts is slowed down; nobody can lock out an account they do not own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LOGIN = "/accounts/login/"


def fail_logins(client, username: str, times: int, ip: str = "203.0.113.7") -> list[int]:
    return [
        client.post(LOGIN, {"username": username, "password": "wrong"}, REMOTE_ADDR=ip).status_code
        for _ in range(times)
    ]


def fail_logins_page(client, username: str, ip: str = "203.0.113.7"):
    return client.post(LOGIN, {"username": username, "password": "wrong"}, REMOTE_ADDR=ip)


def log_in(client, user, ip: str = "203.0.113.7"):
    return client.post(
        LOGIN, {"username": user.username, "password": "correct horse battery"}, REMOTE_ADDR=ip
    )


def test_account_is_locked_after_the_failure_limit_even_with_the_right_password(client, user):
    with time_machine.travel(T0, tick=False):
        statuses = fail_logins(client, "alice", settings.AXES_FAILURE_LIMIT)
        response = log_in(client, user)

    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failures_for_bob_refuse_neither_alice_nor_admin_from_the_same_address(
    client, user, admin_user
):
    with time_machine.travel(T0, tick=False):
        fail_logins(client, "bob", settings.AXES_FAILURE_LIMIT + 2)
        alice = log_in(client, user)
        client.logout()
        admin = client.post(
            "/admin/login/?next=/admin/",
            {"username": "admin", "password": "password"},
            REMOTE_ADDR="203.0.113.7",
        )

    assert alice.status_code == 302
    assert admin.status_code == 302
    assert not AccessAttempt.objects.filter(username__in=["alice", "admin"]).exists()


def test_a_locked_account_still_logs_in_from_another_address(client, user):
    with time_machine.travel(T0, tick=False):
        fail_logins(client, "alice", settings.AXES_FAILURE_LIMIT, ip="198.51.100.1")
        from_there = log_in(client, user, ip="198.51.100.1")
        from_elsewhere = log_in(client, user, ip="192.0.2.200")

    assert from_there.status_code == 429
    assert from_elsewhere.status_code == 302


def test_an_address_trying_many_accounts_is_slowed_down_for_a_minute_only(client, user):
    with time_machine.travel(T0, tick=False):
        for n in range(20):
            fail_logins(client, f"guess{n}", 1, ip="203.0.113.9")
        slowed = log_in(client, user, ip="203.0.113.9")
        from_elsewhere = log_in(client, user, ip="192.0.2.1")
    with time_machine.travel(T0 + timedelta(seconds=61), tick=False):
        client.logout()
        a_minute_later = log_in(client, user, ip="203.0.113.9")

    assert slowed.status_code == 429
    assert "sent too often from here" in slowed.content.decode()
    assert from_elsewhere.status_code == 302
    assert a_minute_later.status_code == 302
    assert not AccessAttempt.objects.filter(username="alice").exists()


def test_lockout_page_says_how_long_to_wait_in_plain_words(client):
    with time_machine.travel(T0, tick=False):
        fail_logins(client, "alice", settings.AXES_FAILURE_LIMIT - 1)
        response = fail_logins_page(client, "alice")
    with time_machine.travel(T0 + timedelta(minutes=10, seconds=30), tick=False):
        later = fail_logins_page(client, "alice")

    body = response.content.decode()
    assert response.status_code == 429
    assert f"After {settings.AXES_FAILURE_LIMIT} failed attempts" in body
    assert "logging in as alice from your network is blocked for a while" in body
    assert "Try again in 15 minutes." in body
    assert "blocked\n     network" not in body and "blocked network" not in body
    assert "Try again in 5 minutes." in later.content.decode()


def test_lockout_expires_after_the_cool_off(client, user):
    with time_machine.travel(T0, tick=False):
        fail_logins(client, "alice", settings.AXES_FAILURE_LIMIT)
    with time_machine.travel(T0 + settings.AXES_COOLOFF_TIME + timedelta(seconds=1), tick=False):
        response = log_in(client, user)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_attempts_during_the_lockout_do_not_extend_it(client, user):
    with time_machine.travel(T0, tick=False):
        fail_logins(client, "alice", settings.AXES_FAILURE_LIMIT)
    for minute in range(1, 15):  # one guess a minute, all through the lock
        with time_machine.travel(T0 + timedelta(minutes=minute), tick=False):
            assert fail_logins(client, "alice", 1) == [429]
    with time_machine.travel(T0 + settings.AXES_COOLOFF_TIME + timedelta(seconds=1), tick=False):
        after = log_in(client, user)

    assert after.status_code == 302


def test_admin_login_is_throttled_too(client, admin_user):
    with time_machine.travel(T0, tick=False):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            client.post("/admin/login/", {"username": "admin", "password": "wrong"})
        response = client.post("/admin/login/", {"username": "admin", "password": "password"})

    body = response.content.decode()
    assert response.status_code == 429
    assert 'id="site-name"' in body  # the admin's own page, not the public site's
    assert "logging in as admin from your network is blocked for a while" in body


def test_a_success_before_the_limit_clears_the_failures(client, user):
    with time_machine.travel(T0, tick=False):
        fail_logins(client, "alice", settings.AXES_FAILURE_LIMIT - 1)
        assert log_in(client, user).status_code == 302
        client.logout()
        fail_logins(client, "alice", settings.AXES_FAILURE_LIMIT - 1)
        response = log_in(client, user)

    assert response.status_code == 302


def test_failed_login_records_shown_in_the_admin_do_not_keep_the_password(client):
    client.post(LOGIN, {"username": "alice", "password": "my-real-password-typo"})

    attempt = AccessAttempt.objects.get(username="alice")
    assert "my-real-password-typo" not in attempt.post_data + attempt.get_data
    assert "password" in attempt.post_data  # the field is listed, its value masked
