"""Development's outbox: every mail kept in the database, listed for staff with clickable links."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jobs.testing import run_due_jobs
from outbox.models import OutboxMail
from tests.test_settings import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox_backend(settings):
    settings.EMAIL_BACKEND = "outbox.backends.EmailBackend"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def sign_up(client) -> None:
    client.post(
        "/accounts/signup/",
        {
            "username": "newbie",
            "email": "newbie@example.com",
            "password1": "a long enough passphrase",
            "password2": "a long enough passphrase",
        },
    )
    run_due_jobs()  # the activation mail is a job of its own


def test_activation_mail_is_in_the_outbox_with_its_link_clickable(
    client, admin_client, outbox_backend
):
    sign_up(client)

    mail = OutboxMail.objects.get()
    listed = admin_client.get("/admin/outbox/outboxmail/").content.decode()
    page = admin_client.get(f"/admin/outbox/outboxmail/{mail.pk}/change/").content.decode()

    assert mail.to == "newbie@example.com"
    assert '<a href="http://testserver/accounts/activate/' in listed
    assert '<a href="http://testserver/accounts/activate/' in page
    assert "open the HTML version" in page


def test_the_outbox_is_for_staff_only(client, outbox_backend):
    sign_up(client)

    response = client.get("/admin/outbox/outboxmail/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_a_mails_html_is_shown_sandboxed(client, admin_client, outbox_backend):
    sign_up(client)
    mail = OutboxMail.objects.get()

    response = admin_client.get(f"/admin/outbox/outboxmail/{mail.pk}/html/")

    assert response.status_code == 200
    assert response["Content-Security-Policy"].startswith("sandbox")
    assert "/accounts/activate/" in response.content.decode()


def setting(name: str, **env: str) -> str:
    code = (
        f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **{
                k: v
                for k, v in os.environ.items()
                if k not in {"DEBUG", "PORT", "WEB_PORT", "BIND_HOST", "SITE_URL"}
            },
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_development_mail_goes_to_the_outbox_and_links_use_the_served_port():
    assert setting("EMAIL_BACKEND") == "outbox.backends.EmailBackend"
    assert setting("SITE_URL", PORT="8123") == "http://localhost:8123"
    any_address = "0.0.0.0"  # noqa: S104
    assert setting("SITE_URL", PORT="8123", BIND_HOST=any_address) == "http://localhost:8123"


def test_every_process_of_make_run_links_to_the_webs_port():
    # honcho: the web gets PORT, the next Procfile line PORT + 100, ...; make run sets WEB_PORT.
    assert setting("SITE_URL", PORT="8223", WEB_PORT="8123") == "http://localhost:8123"
    assert setting("SITE_URL", PORT="8223", SITE_URL="https://prebook.example") == (
        "https://prebook.example"
    )


def test_the_development_gyms_listen_beside_the_webs_port():
    def ports(**env: str) -> str:
        return setting("PREBOOKING_DEMO_GYM_PORT, settings.AIMHARDER_LOGIN_URL", **env)

    assert ports() == "8765 http://127.0.0.1:9766"
    assert ports(PORT="8223", WEB_PORT="8001") == "8766 http://127.0.0.1:9767"
    assert ports(PORT="9000") == "9765 http://127.0.0.1:10766"  # none of the stack's on 8000
