"""Fixtures for prebooking tests: the demo gym served in-process on a free port, mail capture."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from prebooking import services
from prebooking.demo_gym import make_server, register_class, serve_in_thread
from prebooking.providers import close_providers

_class_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def mailbox(settings):
    from django.core import mail

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    mail.outbox = []
    return mail.outbox


@pytest.fixture
def demo_gym(settings):
    server = make_server("127.0.0.1", 0)
    serve_in_thread(server)
    settings.PREBOOKING_PROVIDERS = {
        "demo": {
            "label": "Demo gym",
            "url": f"http://127.0.0.1:{server.server_address[1]}",
            "token": "",
        }
    }
    yield server
    close_providers()  # ends the keep-alive connections, so the gym's threads let go of the DB
    server.shutdown()
    server.wait_for_handlers(timeout=5)
    server.server_close()


@pytest.fixture
def fast_firing(settings):
    """Open connections 0.5 s ahead so tests can fire a second from now."""
    settings.PREBOOKING_PREPARE_SECONDS = 0.5


@pytest.fixture
def make_prebooking(user):
    """Create prebookings through the real service, against one demo gym class per call site."""

    def make(opens_in: float = 3600, owner=None, class_id=None, capacity=0, **payload):
        opens_at = timezone.now() + timedelta(seconds=opens_in)
        class_id = class_id or f"class-{next(_class_numbers)}"
        if capacity:
            register_class(class_id, opens_at, capacity=capacity)
        owner = owner or user
        body = {"class_id": class_id, "member": owner.username, **payload}
        return services.create_prebooking(owner, "demo", body, opens_at)

    return make
