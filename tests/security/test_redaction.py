"""Secrets never reach log lines, stored tracebacks, error e-mails or the admin."""

from __future__ import annotations

import io
import logging

import pytest
from django.test import Client

from core.error_reports import RedactingExceptionReporter
from core.redaction import REDACTED, redact
from jobs.models import JobAttempt
from jobs.testing import run_due_jobs
from tests.security import sample_jobs
from tests.security.urls import LIVE_KEY

WEBHOOK_SECRET = "whsec_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SIGNATURE = (
    "t=1764158400,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,"
    "v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
)


@pytest.fixture
def secrets(settings):
    settings.STRIPE_API_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.SECRET_KEY = "a-very-long-django-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
    return settings


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("charging with sk_live_51AbCdEfGhIjKlMnOpQrStUv", "51AbCdEfGhIjKlMnOpQrStUv"),
        ("key=sk_test_4eC39HqLyjWDarjtT1zdp7dc failed", "4eC39HqLyjWDarjtT1zdp7dc"),
        ("restricted rk_live_51Xyz0123456789abcdef", "51Xyz0123456789abcdef"),
        ("signing secret whsec_abcDEF123456", "abcDEF123456"),
        (f"Stripe-Signature: {SIGNATURE}", "5257a869e7ecebeda32affa62cdca3fa51cad7e7"),
        (f"{{'HTTP_STRIPE_SIGNATURE': '{SIGNATURE}'}}", "6ffbb59b2300aae63f272406069a9788"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("{'HTTP_AUTHORIZATION': 'Basic YWxpY2U6aHVudGVyMg=='}", "YWxpY2U6aHVudGVyMg=="),
        ("username=alice&password=hunter2hunter2&next=/", "hunter2hunter2"),
        ("{'password1': 'correct horse', 'username': 'bob'}", "correct"),
        ('{"password": "s3cr3t-pass", "email": "a@b.c"}', "s3cr3t-pass"),
        ("STRIPE_API_KEY = 'live-key-value'", "live-key-value"),
        ("postgres://app:pa55w0rd-db@db.internal:5432/app", "pa55w0rd-db"),
    ],
)
def test_secret_shapes_are_redacted(text, secret):
    assert secret not in redact(text)
    assert REDACTED in redact(text)


def test_configured_secret_values_are_redacted_wherever_they_appear(secrets):
    text = f"{secrets.SECRET_KEY} | {WEBHOOK_SECRET} | {secrets.STRIPE_API_KEY}"

    assert redact(text) == f"{REDACTED} | {REDACTED} | {REDACTED}"


def test_a_secret_changed_after_a_line_was_redacted_is_redacted_too(settings):
    # The configured values are read once, then again when one of them changes.
    assert redact("plain words") == "plain words"
    settings.SECRET_KEY = "a-rotated-django-secret-key-9876543210-zyxwvutsrqponmlkjihgfedcba"

    assert redact(f"key {settings.SECRET_KEY}") == f"key {REDACTED}"


def test_ids_and_types_a_person_needs_survive():
    line = "event evt_1QxYz type invoice.paid for cus_ABC123 pi_3Mtw job #42 attempt 2 failed"

    assert redact(line) == line


def test_log_lines_and_their_tracebacks_are_redacted(secrets):
    """Through the handler settings.LOGGING configures, its stream swapped for a buffer."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "stdout")
    buffer = io.StringIO()
    stream = handler.setStream(buffer)
    try:
        try:
            raise ValueError(f"bad key {LIVE_KEY}")
        except ValueError:
            logging.getLogger("tests.security").exception(
                "calling Stripe with %s and %s", secrets.STRIPE_API_KEY, SIGNATURE
            )
    finally:
        handler.setStream(stream)

    out = buffer.getvalue()
    assert "calling Stripe with" in out
    assert "ValueError: bad key sk_live_" in out  # the traceback is there, redacted
    assert LIVE_KEY not in out
    assert secrets.STRIPE_API_KEY not in out
    assert "5257a869e7ecebeda32a" not in out


@pytest.mark.django_db
@pytest.mark.urls("tests.security.urls")
def test_error_emails_to_admins_carry_no_secrets(settings, outbox, secrets):
    settings.ADMINS = [("Ops", "ops@example.com")]
    client = Client(raise_request_exception=False)

    response = client.post(
        "/boom/",
        {"webhook_secret": WEBHOOK_SECRET, "password": "hunter2hunter2", "note": "visible"},
        HTTP_STRIPE_SIGNATURE=SIGNATURE,
        HTTP_AUTHORIZATION="Bearer tok_abcdefghijklmnop",
    )

    assert response.status_code == 500
    assert len(outbox) == 1
    email = outbox[0].subject + outbox[0].body
    assert "RuntimeError" in email  # the report is there ...
    assert "visible" in email
    for secret in (LIVE_KEY, WEBHOOK_SECRET, "hunter2hunter2", "5257a869e7", "tok_abcdefghij"):
        assert secret not in email  # ... without the secrets


@pytest.mark.django_db
def test_debug_page_html_report_carries_no_secrets(rf, secrets):
    request = rf.post("/boom/", {"password": "hunter2hunter2"}, HTTP_STRIPE_SIGNATURE=SIGNATURE)
    try:
        api_key = LIVE_KEY
        raise RuntimeError(f"refused {api_key} with {WEBHOOK_SECRET}")
    except RuntimeError as exc:
        html = RedactingExceptionReporter(
            request, type(exc), exc, exc.__traceback__
        ).get_traceback_html()

    assert "refused" in html
    for secret in (LIVE_KEY, WEBHOOK_SECRET, "hunter2hunter2", "5257a869e7"):
        assert secret not in html


@pytest.mark.django_db
def test_job_errors_and_tracebacks_stored_for_the_admin_are_redacted(secrets):
    sample_jobs.leaks_secret.enqueue(key=secrets.STRIPE_API_KEY)
    run_due_jobs()

    attempt = JobAttempt.objects.get()
    assert attempt.outcome == "failed"
    assert "Stripe said no" in attempt.error
    assert "Stripe said no" in attempt.traceback
    for stored in (attempt.error, attempt.traceback, attempt.job.last_error):
        assert secrets.STRIPE_API_KEY not in stored
        assert WEBHOOK_SECRET not in stored
