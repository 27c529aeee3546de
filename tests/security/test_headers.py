"""With DEBUG off, real responses carry the security headers and cookie flags.

The settings are read at start-up from the environment, so a separate process starts with the
production environment and answers real requests through the whole middleware stack
(tests/security/production_probe.py); these tests read what it saw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import database_url_for_subprocess

ROOT = Path(__file__).resolve().parents[2]
# The probe uses the test database; the mark makes pytest-django create it for this module.
pytestmark = pytest.mark.django_db
PRODUCTION_KEY = "p" * 20 + "-production-secret-key-that-is-long-enough-0123456789"


@pytest.fixture(scope="module")
def production(django_db_setup, django_db_blocker, tmp_path_factory) -> dict:
    output = tmp_path_factory.mktemp("probe") / "responses.json"
    with django_db_blocker.unblock():
        database_url = database_url_for_subprocess()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "SENTRY_"))
        and key not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}
    }
    environment.update(
        DEBUG="0",
        TESTING="1",  # plain static storage: no collectstatic manifest in a test run
        SECRET_KEY=PRODUCTION_KEY,
        ALLOWED_HOSTS="testserver",
        DATABASE_URL=database_url,
        # Production requires a credentials key; a test-only one.
        PREBOOKING_CREDENTIALS_KEY="Itr_s9RU2eJAjCnNHo9z-AqJ2E-Uht1eS-qM-SJGGK8=",
        METRICS_TOKEN="test-metrics-token",
    )
    result = subprocess.run(
        [sys.executable, "-m", "tests.security.production_probe", str(output)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(output.read_text())


def test_plain_http_is_redirected_to_https(production):
    assert production["http"]["status"] == 301
    assert production["http"]["location"] == "https://testserver/accounts/login/"


def test_health_check_answers_over_plain_http_for_the_load_balancer(production):
    assert production["healthz_http"]["status"] == 200


def test_https_pages_carry_hsts_for_a_year_with_subdomains(production):
    hsts = production["login_page"]["headers"]["Strict-Transport-Security"]

    assert hsts == "max-age=31536000; includeSubDomains; preload"


def test_pages_forbid_sniffing_framing_and_cross_site_referrers(production):
    headers = production["login_page"]["headers"]

    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_pages_carry_a_csp_without_inline_code_or_framing(production):
    csp = dict(
        directive.strip().split(" ", 1)
        for directive in production["login_page"]["headers"]["Content-Security-Policy"].split(";")
    )

    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["object-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in " ".join(csp.values())


def test_session_cookie_is_secure_httponly_and_same_site(production):
    login = production["login"]

    assert login["status"] == 302
    assert login["cookies"]["sessionid"] == {"secure": True, "httponly": True, "samesite": "Lax"}


def test_csrf_cookie_is_secure_httponly_and_same_site(production):
    cookie = production["login_page"]["cookies"]["csrftoken"]

    assert cookie == {"secure": True, "httponly": True, "samesite": "Lax"}
