"""Fixtures for the security tests."""

from __future__ import annotations

import pytest
from django.core import mail


@pytest.fixture
def outbox(settings):
    """Mail goes to anymail's test backend; the list of sent messages."""
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    mail.outbox = []
    return mail.outbox


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """PBKDF2 at production strength is slow on purpose; these tests log in hundreds of times."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
