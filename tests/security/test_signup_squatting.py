"""Sign-up squatting: whoever proves the address gets the account they asked for, with the
password they chose; a stranger's earlier sign-up for that address never becomes it."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from accounts.models import PendingSignup
from jobs.testing import run_due_jobs
from tests.security.test_enumeration import signup

pytestmark = pytest.mark.django_db

VICTIM = "victim@example.com"


def signup_as(client, username: str, email: str, password: str):
    response = client.post(
        "/accounts/signup/",
        {"username": username, "email": email, "password1": password, "password2": password},
    )
    run_due_jobs()
    return response


def links_in(outbox) -> list[str]:
    return [re.search(r"https?://\S+/accounts/activate/\S+/", m.body).group(0) for m in outbox]


def test_the_owner_who_signs_up_after_a_squatter_gets_their_own_account(client, outbox):
    signup_as(client, "mallory", "VICTIM@example.com", "squatter passphrase 1")
    signup_as(client, "victim", VICTIM, "victim passphrase 22")
    squatters_link, owners_link = links_in(outbox)
    assert [m.to for m in outbox] == [[VICTIM], [VICTIM]]

    response = client.post(owners_link, {"password": "victim passphrase 22"})

    assert response.status_code == 302
    account = User.objects.get(email=VICTIM)
    assert account.username == "victim"
    assert account.check_password("victim passphrase 22")
    assert not account.check_password("squatter passphrase 1")
    assert not User.objects.filter(username="mallory").exists()
    client.logout()
    dead = client.post(squatters_link, {"password": "squatter passphrase 1"})
    assert "invalid" in dead.content.decode()
    assert User.objects.count() == 1


def test_the_owner_cannot_be_handed_the_squatters_account_by_its_link(client, outbox):
    signup_as(client, "mallory", VICTIM, "squatter passphrase 1")
    (squatters_link,) = links_in(outbox)

    # The owner opens the stranger's mail and tries their own password: no account is made.
    response = client.post(squatters_link, {"password": "victim passphrase 22"})

    assert response.status_code == 400
    assert "not the password chosen at this sign-up" in response.content.decode()
    assert not User.objects.exists()
    assert "_auth_user_id" not in client.session


def test_a_second_signup_for_an_unproved_address_mails_its_own_link(client, outbox):
    signup_as(client, "first", VICTIM, "first passphrase 111")
    signup_as(client, "second", VICTIM, "second passphrase 22")

    first, second = links_in(outbox)
    assert first != second
    assert "first" in outbox[0].body and "second" in outbox[1].body
    assert PendingSignup.objects.filter(email=VICTIM).count() == 2


def test_after_the_address_is_proved_a_signup_tells_its_owner_instead(client, outbox):
    signup_as(client, "victim", VICTIM, "victim passphrase 22")
    client.post(links_in(outbox)[0], {"password": "victim passphrase 22"})
    client.logout()
    run_due_jobs()  # the welcome mail
    outbox.clear()

    signup(client, "mallory", " Victim@Example.com ")

    assert "already has" in outbox[0].body and "user name: victim" in outbox[0].body
    assert not PendingSignup.objects.exists()


def test_a_legacy_inactive_signup_that_never_logged_in_does_not_own_the_address(client, outbox):
    User.objects.create_user("mallory", VICTIM, "squatter passphrase 1", is_active=False)

    signup_as(client, "victim", VICTIM, "victim passphrase 22")
    client.post(links_in(outbox)[0], {"password": "victim passphrase 22"})

    assert list(User.objects.values_list("username", "is_active")) == [("victim", True)]


def test_a_deactivated_account_keeps_its_address(client, outbox, user):
    User.objects.filter(pk=user.pk).update(is_active=False, last_login="2026-01-01T00:00Z")

    signup(client, "mallory", user.email)

    assert "already has" in outbox[0].body
    assert not PendingSignup.objects.exists()
