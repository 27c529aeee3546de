"""Sign-up and password-reset forms are rate limited per client, with counters all workers share."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import caches
from django.db import connection
from django.test import RequestFactory

from core.security import client_ip
from jobs.testing import run_due_jobs

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def signup(client, n: int, ip: str = "203.0.113.7", **headers: str):
    """Sign up, then let the worker send the mail (it is a job of its own)."""
    response = client.post(
        "/accounts/signup/",
        {
            "username": f"user{n}",
            "email": f"user{n}@example.com",
            "password1": "a long enough passphrase",
            "password2": "a long enough passphrase",
        },
        REMOTE_ADDR=ip,
        **headers,
    )
    run_due_jobs()
    return response


@pytest.mark.django_db
def test_signups_from_one_address_are_refused_past_the_rate(client, settings, outbox):
    settings.SIGNUP_RATE = "3/h"
    with time_machine.travel(T0, tick=False):
        statuses = [signup(client, n).status_code for n in range(4)]
        from_elsewhere = signup(client, 99, ip="192.0.2.1")

    assert statuses == [302, 302, 302, 429]
    assert from_elsewhere.status_code == 302
    assert len(outbox) == 4  # the refused one sent nothing


@pytest.mark.django_db
def test_signup_limit_page_says_to_wait(client, settings):
    settings.SIGNUP_RATE = "1/h"
    with time_machine.travel(T0, tick=False):
        signup(client, 1)
        response = signup(client, 2)

    assert response.status_code == 429
    assert "Too many requests" in response.content.decode()


@pytest.mark.django_db
def test_signup_limit_lifts_in_the_next_window(client, settings, outbox):
    settings.SIGNUP_RATE = "1/h"
    with time_machine.travel(T0, tick=False):
        signup(client, 1)
        assert signup(client, 2).status_code == 429
    with time_machine.travel(T0 + timedelta(hours=1, minutes=1), tick=False):
        assert signup(client, 3).status_code == 302


@pytest.mark.django_db
def test_viewing_the_signup_form_is_not_counted(client, settings):
    settings.SIGNUP_RATE = "1/h"
    with time_machine.travel(T0, tick=False):
        for _ in range(5):
            assert client.get("/accounts/signup/").status_code == 200
        assert signup(client, 1).status_code == 302


@pytest.mark.django_db
def test_password_resets_for_one_address_are_refused_past_the_rate(client, user, settings, outbox):
    settings.MAIL_ADDRESS_RATE = "2/h"
    with time_machine.travel(T0, tick=False):
        statuses = [
            client.post(
                "/accounts/password_reset/",
                {"email": "alice@example.com"},
                REMOTE_ADDR=f"198.51.100.{n}",  # a different address each time: per e-mail limit
            ).status_code
            for n in range(1, 4)
        ]
        run_due_jobs()  # each reset mail is its own job (mail.services)

    assert statuses == [302, 302, 429]
    assert len(outbox) == 2


@pytest.mark.django_db
def test_password_resets_from_one_address_are_refused_past_the_rate(client, settings, outbox):
    settings.PASSWORD_RESET_IP_RATE = "2/h"
    with time_machine.travel(T0, tick=False):
        statuses = [
            client.post(
                "/accounts/password_reset/", {"email": f"x{n}@example.com"}, REMOTE_ADDR="1.2.3.4"
            ).status_code
            for n in range(3)
        ]

    assert statuses == [302, 302, 429]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_are_all_counted():
    """The counter is one atomic UPDATE: 8 threads x 25 increments lose none."""
    cache = caches["ratelimit"]
    assert cache.add("k", 0, 60)
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(25):
                cache.incr("k")
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert cache.get("k") == 200


@pytest.mark.django_db
def test_counter_expires_and_a_new_window_starts_from_add():
    cache = caches["ratelimit"]
    with time_machine.travel(T0, tick=False):
        assert cache.add("k", 1, 60)
        assert not cache.add("k", 1, 60)
        assert cache.incr("k") == 2
    with time_machine.travel(T0 + timedelta(seconds=61), tick=False):
        assert cache.get("k") is None
        with pytest.raises(ValueError):
            cache.incr("k")
        assert cache.add("k", 1, 60)
        assert cache.get("k") == 1


def request_from(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_the_forwarded_header_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0

    assert client_ip(request_from("203.0.113.7", "1.1.1.1")) == "203.0.113.7"


def test_behind_one_proxy_the_client_is_the_address_that_proxy_appended(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    spoofed = request_from("10.0.0.2", "6.6.6.6, 203.0.113.7")  # client sent "6.6.6.6"

    assert client_ip(spoofed) == "203.0.113.7"


def test_behind_two_proxies_the_client_is_second_from_the_right(settings):
    settings.TRUSTED_PROXY_COUNT = 2

    assert client_ip(request_from("10.0.0.2", "6.6.6.6, 203.0.113.7, 10.0.0.1")) == "203.0.113.7"


def test_a_request_that_bypassed_the_proxies_falls_back_to_the_peer_address(settings):
    settings.TRUSTED_PROXY_COUNT = 2

    assert client_ip(request_from("198.51.100.5", "6.6.6.6")) == "198.51.100.5"
    assert client_ip(request_from("198.51.100.5", "garbage, 10.0.0.1")) == "198.51.100.5"


@pytest.mark.django_db
def test_login_lockout_counts_the_proxied_client_address(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/accounts/login/",
            {"username": "someone", "password": "x"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"{n}.{n}.{n}.{n}, 203.0.113.7",  # forged left part varies
        )
    other_client = client.post(
        "/accounts/login/",
        {"username": "someone", "password": "x"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="192.0.2.1",
    )
    locked = client.post(
        "/accounts/login/",
        {"username": "someone", "password": "x"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.7",
    )

    assert other_client.status_code == 200  # same proxy, different client: not locked
    assert locked.status_code == 429


@pytest.mark.django_db
def test_signup_limit_counts_the_proxied_client_address(client, settings, outbox):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.SIGNUP_RATE = "2/h"

    def via_proxy(n: int, forwarded: str) -> int:
        return signup(client, n, ip="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded).status_code

    with time_machine.travel(T0, tick=False):
        same_client = [via_proxy(n, f"{n}.{n}.{n}.{n}, 203.0.113.7") for n in range(3)]
        other_client = via_proxy(9, "192.0.2.1")

    assert same_client == [302, 302, 429]  # forging the left part does not reset the count
    assert other_client == 302  # same proxy, different client: its own count


def _reset(client, email: str, n: int):
    return client.post("/accounts/password_reset/", {"email": email}, REMOTE_ADDR=f"198.51.100.{n}")


def _signup_as(client, email: str, n: int):
    return client.post(
        "/accounts/signup/",
        {
            "username": f"mallory{n}",
            "email": email,
            "password1": "a long enough passphrase",
            "password2": "a long enough passphrase",
        },
        REMOTE_ADDR=f"192.0.2.{n}",
    )


@pytest.mark.django_db
def test_spellings_of_one_address_share_one_allowance(client, user, settings, outbox):
    spellings = [
        "alice@example.com",
        "Alice@example.com",
        "ALICE@EXAMPLE.COM",
        " alice@example.com ",
    ]
    with time_machine.travel(T0, tick=False):
        statuses = [_reset(client, email, n).status_code for n, email in enumerate(spellings)]
        run_due_jobs()

    assert statuses == [302, 302, 302, 429]
    assert len(outbox) == 3


@pytest.mark.django_db
def test_signup_and_reset_together_mail_an_address_at_most_three_times_an_hour(
    client, user, settings, outbox
):
    with time_machine.travel(T0, tick=False):
        statuses = [
            (_signup_as if n % 2 else _reset)(client, "ALICE@example.com", n).status_code
            for n in range(8)
        ]
        run_due_jobs()

    assert statuses == [302, 302, 302] + [429] * 5
    assert len(outbox) == 3 and {tuple(m.to) for m in outbox} == {("alice@example.com",)}
    with time_machine.travel(T0 + timedelta(hours=1, minutes=1), tick=False):
        assert _reset(client, "alice@example.com", 99).status_code == 302


@pytest.mark.django_db
def test_the_mail_limit_answers_alike_for_addresses_with_and_without_accounts(
    client, user, settings, outbox
):
    settings.MAIL_ADDRESS_RATE = "1/h"
    with time_machine.travel(T0, tick=False):
        for email in ("alice@example.com", "nobody@example.com"):
            _signup_as(client, email, 1)
        known = _signup_as(client, "alice@example.com", 2)
        unknown = _signup_as(client, "nobody@example.com", 3)

    assert known.status_code == unknown.status_code == 429
    assert known.content == unknown.content


@pytest.mark.django_db
def test_a_signup_form_sent_back_with_errors_does_not_use_up_the_addresss_mails(
    client, settings, outbox
):
    settings.MAIL_ADDRESS_RATE = "1/h"
    with time_machine.travel(T0, tick=False):
        for _ in range(3):
            typo = client.post(
                "/accounts/signup/",
                {"username": "bob", "email": "bob@example.com", "password1": "a", "password2": "b"},
            )
            assert typo.status_code == 200
        assert _signup_as(client, "bob@example.com", 1).status_code == 302
