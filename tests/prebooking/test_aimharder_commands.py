"""The scripted path: aimharder_link (password on stdin) and prebook (prints the id)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from prebooking.models import AimHarderAccount, Prebooking
from tests.prebooking.conftest import AIMHARDER_EMAIL, AIMHARDER_PASSWORD

pytestmark = pytest.mark.django_db


def _link(monkeypatch, password: str) -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    out = io.StringIO()
    call_command("aimharder_link", "--user", "alice", "--email", AIMHARDER_EMAIL, stdout=out)
    return out.getvalue()


def test_aimharder_link_reads_the_password_from_stdin(monkeypatch, fake_aimharder, user):
    output = _link(monkeypatch, AIMHARDER_PASSWORD)

    assert "crossfit-sur (4321)" in output
    assert AimHarderAccount.objects.filter(owner=user, email=AIMHARDER_EMAIL).exists()


def test_aimharder_link_with_a_wrong_password_fails_and_stores_nothing(
    monkeypatch, fake_aimharder, user
):
    with pytest.raises(CommandError, match="did not accept"):
        _link(monkeypatch, "wrong")

    assert not AimHarderAccount.objects.exists()


def test_prebook_prints_the_id_of_the_prebooking_it_made(linked_account, gym_class, user):
    fake_class = gym_class(opens_in=3600, starts_in=86400)
    opens_at = datetime.fromtimestamp(fake_class.opens_at, tz=UTC).replace(microsecond=0)
    out = io.StringIO()

    call_command(
        "prebook",
        "--user",
        "alice",
        "--provider",
        "aimharder",
        "--box",
        "crossfit-sur",
        "--session-id",
        fake_class.session_id,
        "--day",
        fake_class.day,
        "--opens-at",
        opens_at.isoformat(),
        stdout=out,
    )

    prebooking = Prebooking.objects.get(pk=int(out.getvalue()))
    assert (prebooking.owner, prebooking.provider, prebooking.opens_at) == (
        user,
        "aimharder",
        opens_at,
    )
    assert prebooking.payload["session_id"] == fake_class.session_id


def test_prebook_refuses_a_class_the_gym_does_not_list(linked_account, gym_class):
    fake_class = gym_class(opens_in=3600)
    opens_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    with pytest.raises(CommandError, match="no class 424242"):
        call_command(
            "prebook",
            "--user",
            "alice",
            "--box",
            "crossfit-sur",
            "--session-id",
            "424242",
            "--day",
            fake_class.day,
            "--opens-at",
            opens_at,
        )
    assert not Prebooking.objects.exists()


def test_the_fake_aimharder_process_serves_its_demo_member(start_process):
    import json
    import socket
    import urllib.request

    from prebooking.providers.aimharder.client import new_fingerprint
    from tests.waiting import wait_for

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start_process(["manage.py", "fake_aimharder", "--port", str(port)], AIMHARDER_FAKE_ENABLED="1")
    body = {
        "username": "member@example.com",
        "password": "aimharder-demo",
        "fingerprint": new_fingerprint(),
        "iniframe": 0,
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/login", data=json.dumps(body).encode(), method="POST"
    )

    def answered() -> bool:
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                return json.loads(response.read())["data"]["auth"]["authOK"] is True
        except OSError:
            return False

    assert wait_for(answered, timeout=30)
