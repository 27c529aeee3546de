"""Fixtures for prebooking tests: the demo gym served in-process on a free port, mail capture."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from devgyms.demo_gym import make_server, register_class, serve_in_thread
from prebooking import services
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


# -- AimHarder ---------------------------------------------------------------------------------
AIMHARDER_EMAIL = "ana@example.com"
AIMHARDER_PASSWORD = "Zx9-unique-gym-secret-4471"  # searched for in tables, logs, tracebacks


@pytest.fixture
def fake_aimharder(settings):
    """The fake AimHarder served in-process on a free port, one box and one member.

    Clock probing is off unless a test turns it on (it takes seconds); preparation starts 1 s
    before the instant.
    """
    from devgyms.fake_aimharder import FakeAimHarder, serve
    from prebooking.providers import clock

    fake = FakeAimHarder()
    fake.add_box("crossfit-sur", "4321", "CrossFit Sur")
    fake.add_account(AIMHARDER_EMAIL, AIMHARDER_PASSWORD, ["crossfit-sur"], "Ana Member")
    server, _thread = serve(fake)
    settings.AIMHARDER_LOGIN_URL = server.url
    settings.AIMHARDER_BOX_URL = server.url + "/{box}"
    settings.AIMHARDER_CLOCK_PROBING = False
    settings.AIMHARDER_PREPARE_SECONDS = 1
    close_providers()
    clock.forget()
    yield fake
    close_providers()
    clock.forget()
    server.shutdown()
    server.server_close()


@pytest.fixture
def linked_account(fake_aimharder, user):
    """`user`'s AimHarder account, linked through the real service."""
    from prebooking.aimharder import services as aimharder_services

    return aimharder_services.link_account(user, AIMHARDER_EMAIL, AIMHARDER_PASSWORD)


@pytest.fixture
def gym_class(fake_aimharder):
    """Make a class at the fake: starts in `starts_in` s, opens `opens_in` s from now."""
    from devgyms.fake_aimharder import FakeClass

    def make(opens_in: float = 3600, starts_in: float = 86400, **options) -> FakeClass:
        now = timezone.now()
        return fake_aimharder.add_class(
            "crossfit-sur",
            now + timedelta(seconds=starts_in),
            now + timedelta(seconds=opens_in) + timedelta(seconds=fake_aimharder.skew),
            **options,
        )

    return make


@pytest.fixture
def aimharder_prebooking(linked_account, user):
    """Prebook a fake class through the real services, opening `opens_in` s from now."""
    from datetime import UTC, datetime

    from prebooking.aimharder import services as aimharder_services
    from prebooking.providers.aimharder.client import GymClass

    def make(fake_class, early: float = 0.0, owner=None, account=None, insist=True):
        """Opening at the fake class's opening by the gym's clock (`early` s before it)."""
        account = account or linked_account
        box = account.boxes.get(slug=fake_class.box)
        row = GymClass(
            fake_class.session_id,
            fake_class.name,
            fake_class.time,
            fake_class.coach,
            0,
            fake_class.capacity,
            0,
            True,
            None,
            "",
        )
        day = datetime.strptime(fake_class.day, "%Y%m%d").date()
        payload = aimharder_services.prebooking_payload(owner or user, box, day, row, insist)
        opens_at = datetime.fromtimestamp(fake_class.opens_at - early, tz=UTC)
        return aimharder_services.create_prebooking(owner or user, payload, opens_at)

    return make


def fire_instant(instant) -> int:
    """What the timing worker does for `instant`: prepare, send at it, record the answers."""
    from prebooking import firing

    return firing.arm_instant(instant)
