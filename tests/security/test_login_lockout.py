"""Failed logins lock out the account and the client address (django-axes), for a while."""

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


def test_account_lock_applies_from_every_address(client, user):
    with time_machine.travel(T0, tick=False):
        for n in range(settings.AXES_FAILURE_LIMIT):  # one failure from each of many addresses
            fail_logins(client, "alice", 1, ip=f"198.51.100.{n + 1}")
        response = log_in(client, user, ip="192.0.2.200")

    assert response.status_code == 429


def test_address_is_locked_after_failures_across_many_usernames(client, user):
    with time_machine.travel(T0, tick=False):
        for n in range(settings.AXES_FAILURE_LIMIT):
            fail_logins(client, f"guess{n}", 1, ip="203.0.113.9")
        from_that_address = log_in(client, user, ip="203.0.113.9")
        from_elsewhere = log_in(client, user, ip="192.0.2.1")

    assert from_that_address.status_code == 429
    assert from_elsewhere.status_code == 302  # the account itself is not locked


def test_lockout_page_says_how_long_to_wait(client):
    with time_machine.travel(T0, tick=False):
        fail_logins(client, "alice", settings.AXES_FAILURE_LIMIT - 1)
        response = client.post(LOGIN, {"username": "alice", "password": "x"}, REMOTE_ADDR="1.2.3.4")

    body = response.content.decode()
    assert response.status_code == 429
    assert f"After {settings.AXES_FAILURE_LIMIT} failed attempts" in body
    assert "0:15:00" in body


def test_lockout_expires_after_the_cool_off(client, user):
    with time_machine.travel(T0, tick=False):
        fail_logins(client, "alice", settings.AXES_FAILURE_LIMIT)
    with time_machine.travel(T0 + settings.AXES_COOLOFF_TIME + timedelta(seconds=1), tick=False):
        response = log_in(client, user)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_attempts_during_the_lockout_restart_the_cool_off(client, user):
    with time_machine.travel(T0, tick=False):
        fail_logins(client, "alice", settings.AXES_FAILURE_LIMIT)
    almost_over = T0 + settings.AXES_COOLOFF_TIME - timedelta(seconds=5)
    with time_machine.travel(almost_over, tick=False):
        assert log_in(client, user).status_code == 429
    with time_machine.travel(T0 + settings.AXES_COOLOFF_TIME + timedelta(seconds=1), tick=False):
        still_locked = log_in(client, user)

    assert still_locked.status_code == 429


def test_admin_login_is_throttled_too(client, admin_user):
    with time_machine.travel(T0, tick=False):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            client.post("/admin/login/", {"username": "admin", "password": "wrong"})
        response = client.post("/admin/login/", {"username": "admin", "password": "password"})

    assert response.status_code == 429


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
