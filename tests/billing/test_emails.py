"""Emails: their own jobs, at most once per (cause, template), templates on one base layout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.template.loader import render_to_string

from billing.models import ActivityLog, StripeEvent
from jobs.models import Job
from jobs.services import replay
from mail.models import Email
from mail.services import SUBJECTS, queue_email
from tests.billing.conftest import make_event
from tests.billing.helpers import deliver, drain, run_at, sent

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def paid_invoice(customer: str = "cus_dana") -> dict:
    invoice = {
        "id": "in_dana",
        "object": "invoice",
        "customer": customer,
        "status": "paid",
        "amount_due": 1999,
        "amount_paid": 1999,
        "currency": "eur",
        "hosted_invoice_url": "https://invoice.stripe.test/in_dana",
    }
    return make_event("invoice.paid", invoice, created=int(T0.timestamp()))


def dana(created: datetime = T0) -> dict:
    customer = {"id": "cus_dana", "object": "customer", "email": "dana@example.com", "name": "Dana"}
    return make_event("customer.created", customer, created=int(created.timestamp()) - 10)


@pytest.mark.parametrize("template", sorted(SUBJECTS))
def test_every_template_renders_html_and_text_on_the_base_layout(template):
    context = {"name": "Dana", "recipient": "dana@example.com", "site_url": "https://x.test"}

    html = render_to_string(f"emails/{template}.html", context)
    text = render_to_string(f"emails/{template}.txt", context)

    assert "Hello Dana" in html and "Hello Dana" in text
    assert "because of your Prebook account (dana@example.com)" in html
    assert "because of your Prebook account (dana@example.com)" in text


def test_receipt_is_sent_once_with_the_amount_and_both_parts(client, mailbox):
    deliver(client, dana(), T0)
    deliver(client, paid_invoice(), T0)
    run_at(T0)

    assert sent(mailbox) == [("dana@example.com", "Receipt for your payment")]
    message = mailbox[0]
    assert "19.99 EUR" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "19.99 EUR" in html
    assert "https://invoice.stripe.test/in_dana" in html


def test_reprocessing_the_event_never_sends_its_email_twice(client, mailbox):
    deliver(client, dana(), T0)
    deliver(client, paid_invoice(), T0)
    run_at(T0)
    event_job = StripeEvent.objects.get(type="invoice.paid").job

    with time_machine.travel(T0 + timedelta(seconds=30), tick=False):  # not the wall clock
        assert replay(event_job.pk, actor="test", force=True).done  # staff run it again
    run_at(T0 + timedelta(minutes=1))

    assert StripeEvent.objects.get(type="invoice.paid").status == "processed"
    assert len(mailbox) == 1
    assert Email.objects.count() == 1


def test_payment_and_invoice_paid_events_share_one_receipt(client, mailbox):
    deliver(client, dana(), T0)
    deliver(client, paid_invoice(), T0)
    succeeded = paid_invoice()
    succeeded.update(id="evt_dana_succeeded", type="invoice.payment_succeeded")
    deliver(client, succeeded, T0)
    run_at(T0)

    assert len(mailbox) == 1


def test_email_waits_for_its_recipient_address_and_is_retried(client, mailbox):
    deliver(client, paid_invoice(), T0)  # the customer.created event is late
    run_at(T0)
    email = Email.objects.get()
    assert email.status == "pending"
    assert "RecipientUnknown" in Job.objects.get(name="mail.tasks.send").last_error

    deliver(client, dana(), T0 + timedelta(seconds=30))
    drain(until=T0 + timedelta(minutes=5))

    assert sent(mailbox) == [("dana@example.com", "Receipt for your payment")]


def test_esp_failure_returns_the_email_to_pending_and_a_retry_sends_it(client, mailbox, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    deliver(client, dana(), T0)
    deliver(client, paid_invoice(), T0)
    run_at(T0)  # nothing listens on port 9: the send fails
    assert Email.objects.get().status == "pending"
    assert Job.objects.get(name="mail.tasks.send").status == "retrying"

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"  # the ESP is back
    drain(until=T0 + timedelta(minutes=5))

    assert len(mailbox) == 1
    assert Email.objects.get().status == "sent"


def test_email_whose_sender_died_mid_send_is_not_sent_again(mailbox):
    with time_machine.travel(T0, tick=False):
        email = queue_email("test:crash", "welcome", to="frank@example.com")
    # What a worker killed between committing "sending" and "sent" leaves behind:
    Email.objects.filter(pk=email.pk).update(status="sending")

    drain(until=T0 + timedelta(hours=1))

    assert mailbox == []
    job = Job.objects.get(name="mail.tasks.send")
    assert job.status == "dead"
    assert "at most once" in job.last_error


def test_activating_a_signup_sends_one_welcome_email(client, mailbox):
    client.post(
        "/accounts/signup/",
        {
            "username": "erin",
            "email": "erin@example.com",
            "password1": "A-long pass 123",
            "password2": "A-long pass 123",
        },
    )
    run_at(datetime.now(tz=UTC))
    assert [message.to for message in mailbox] == [["erin@example.com"]]  # the activation link
    link = next(word for word in mailbox[0].body.split() if "/accounts/activate/" in word)
    path = link.removeprefix("http://testserver")

    client.post(path, {"password": "A-long pass 123"})
    client.post(path, {"password": "A-long pass 123"})  # a second click changes nothing
    run_at(datetime.now(tz=UTC))

    assert sent(mailbox)[-1:] == [("erin@example.com", "Welcome to Prebook")]
    assert [m.subject for m in mailbox].count("Welcome to Prebook") == 1


def test_password_change_through_django_view_sends_one_email(client, mailbox, user):
    client.force_login(user)
    mailbox.clear()
    Email.objects.all().delete()

    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": "correct horse battery",
            "new_password1": "Another long pass 456",
            "new_password2": "Another long pass 456",
        },
    )
    assert response.status_code == 302
    run_at(datetime.now(tz=UTC))

    assert sent(mailbox) == [("alice@example.com", "Your password was changed")]


def test_password_reset_mail_carries_a_working_link(client, mailbox, user):
    Email.objects.all().delete()
    client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    run_at(datetime.now(tz=UTC))

    assert sent(mailbox) == [("alice@example.com", "Reset your password")]
    link = next(w for w in mailbox[0].body.split() if "/accounts/reset/" in w)
    page = client.get(link.removeprefix("http://testserver"), follow=True)
    assert "new_password1" in page.content.decode()


def test_email_change_tells_the_old_and_the_new_address(mailbox, user):
    Email.objects.all().delete()
    user.email = "alice.new@example.com"
    user.save()
    user.save()  # saving again changes nothing: no more emails
    run_at(datetime.now(tz=UTC))

    assert sent(mailbox) == [
        ("alice.new@example.com", "This is now your email address"),
        ("alice@example.com", "Your email address was changed"),
    ]


class CheapPBKDF2(PBKDF2PasswordHasher):
    """A preferred hasher other than the stored one, cheap enough for a test."""

    iterations = 10


def test_a_hash_upgrade_on_login_is_not_a_password_change(mailbox, user, settings):
    Email.objects.all().delete()
    settings.PASSWORD_HASHERS = [
        f"{__name__}.CheapPBKDF2",
        "django.contrib.auth.hashers.MD5PasswordHasher",  # what the stored hash uses now
    ]

    # What a login does with a correct password under an outdated hasher: rehash and save.
    assert user.check_password("correct horse battery")

    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_sha256$10$")
    assert not Email.objects.filter(template="password_changed").exists()


def subscription_checkout(event_id: str) -> dict:
    session = {
        "id": "cs_dana",
        "object": "checkout.session",
        "mode": "subscription",
        "customer": "cus_dana",
        "subscription": "sub_dana",
        "amount_total": 1999,
        "currency": "eur",
        "payment_status": "paid",
        "status": "complete",
        "metadata": {},
    }
    return make_event(
        "checkout.session.completed", session, id=event_id, created=int(T0.timestamp())
    )


def test_a_completed_subscription_checkout_confirms_once_and_logs_it(client, mailbox, settings):
    settings.SITE_URL = "https://prebook.test"
    deliver(client, dana(), T0)
    deliver(client, subscription_checkout("evt_dana_checkout"), T0)
    # A second session event naming the same subscription (a retried checkout) adds nothing.
    deliver(client, subscription_checkout("evt_dana_checkout_again"), T0)
    drain(until=T0 + timedelta(hours=1))

    assert sent(mailbox) == [("dana@example.com", "Your subscription is confirmed")]
    assert "19.99 EUR" in mailbox[0].body
    assert "https://prebook.test/billing/" in mailbox[0].body
    logged = ActivityLog.objects.filter(action="subscription.created")
    assert list(logged.values_list("object_id", "stripe_event_id", "customer__stripe_id")) == [
        ("sub_dana", "evt_dana_checkout", "cus_dana")
    ]
