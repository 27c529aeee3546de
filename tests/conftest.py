"""Fixtures shared by the whole suite. The database is real PostgreSQL (see `make test`)."""

from __future__ import annotations

import pytest


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(
        username="alice", email="alice@example.com", password="correct horse battery"
    )
