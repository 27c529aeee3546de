"""Sign-up and password reset answer the same whether or not an address has an account."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from jobs.testing import run_due_jobs

pytestmark = pytest.mark.django_db


def signup(client, username: str, email: str):
    """Sign up, then let the worker send the mail (it is a job of its own)."""
    response = client.post(
        "/accounts/signup/",
        {
            "username": username,
            "email": email,
            "password1": "a long enough passphrase",
            "password2": "a long enough passphrase",
        },
        follow=True,
    )
    run_due_jobs()
    return response


def page_text(response) -> str:
    """The page as a person reads it: no CSRF tokens or other per-request noise."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def test_signup_with_a_registered_address_looks_exactly_like_a_new_one(client, user, outbox):
    new = signup(client, "bob", "bob@example.com")
    taken = signup(client, "mallory", "ALICE@example.com")

    assert new.redirect_chain == taken.redirect_chain == [("/accounts/signup/done/", 302)]
    assert page_text(new) == page_text(taken)


def test_signup_with_a_registered_address_tells_only_its_owner(client, user, outbox):
    signup(client, "mallory", "alice@example.com")

    assert not User.objects.filter(username="mallory").exists()
    assert [m.to for m in outbox] == [["alice@example.com"]]
    assert "already has" in outbox[0].body
    assert "user name: alice" in outbox[0].body


PASSWORD = "a long enough passphrase"


def activation_link(mail) -> str:
    return re.search(r"https?://\S+/accounts/activate/\S+/", mail.body).group(0)


def test_no_account_exists_until_the_mailed_link_is_used(client, outbox):
    signup(client, "bob", "bob@example.com")
    assert not User.objects.filter(username="bob").exists()
    assert "_auth_user_id" not in client.session
    link = activation_link(outbox[0])

    assert client.get(link).status_code == 200  # a link scanner's GET changes nothing
    assert not User.objects.filter(username="bob").exists()
    response = client.post(link, {"password": PASSWORD})

    bob = User.objects.get(username="bob")
    assert bob.is_active and bob.check_password(PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(bob.pk)


def test_activation_link_works_once(client, outbox):
    signup(client, "bob", "bob@example.com")
    link = activation_link(outbox[0])
    client.post(link, {"password": PASSWORD})
    client.logout()

    response = client.post(link, {"password": PASSWORD})

    assert "invalid" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_forged_activation_link_is_refused(client, outbox):
    signup(client, "bob", "bob@example.com")
    uid = re.search(r"/accounts/activate/(\w+)/", outbox[0].body).group(1)

    response = client.post(f"/accounts/activate/{uid}/abc-123/", {"password": PASSWORD})

    assert "invalid" in response.content.decode()
    assert not User.objects.filter(username="bob").exists()


def test_password_reset_answers_the_same_for_known_and_unknown_addresses(client, user, outbox):
    known = client.post("/accounts/password_reset/", {"email": "alice@example.com"}, follow=True)
    unknown = client.post("/accounts/password_reset/", {"email": "nobody@example.com"}, follow=True)

    assert known.redirect_chain == unknown.redirect_chain
    assert page_text(known) == page_text(unknown)
    run_due_jobs()  # the reset mail is its own job (mail.services): no timing tell either
    assert [m.to for m in outbox] == [["alice@example.com"]]


def test_signup_refuses_a_common_or_short_password(client, outbox):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "bob",
            "email": "bob@example.com",
            "password1": "1234567",
            "password2": "1234567",
        },
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert "This password is too common." in body
    assert "too short" in body
    assert "entirely numeric" in body
    assert not User.objects.filter(username="bob").exists()
    assert outbox == []
