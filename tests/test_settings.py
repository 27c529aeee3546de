"""Settings refuse an insecure production configuration and accept a good one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "k" * 20 + "-production-secret-key-that-is-long-enough-0123456789"
CREDENTIALS_KEY = "Itr_s9RU2eJAjCnNHo9z-AqJ2E-Uht1eS-qM-SJGGK8="  # a Fernet key, for tests only


def load_settings(**env: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DEBUG",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "PREBOOKING_CREDENTIALS_KEY",
            "METRICS_TOKEN",
            "METRICS_PUBLIC",
        }
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_secret_key():
    result = load_settings(DEBUG="0", ALLOWED_HOSTS="example.com")

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_the_development_secret_key():
    result = load_settings(
        DEBUG="0", ALLOWED_HOSTS="example.com", SECRET_KEY="dev-insecure-only-for-local-development"
    )

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = load_settings(DEBUG="0", SECRET_KEY=GOOD_KEY)

    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr


def test_production_settings_pass_the_deploy_check():
    result = load_settings(
        DEBUG="0",
        SECRET_KEY=GOOD_KEY,
        ALLOWED_HOSTS="example.com",
        PREBOOKING_CREDENTIALS_KEY=CREDENTIALS_KEY,
        METRICS_TOKEN="metrics-token",
    )

    assert result.returncode == 0, result.stderr + result.stdout


def test_malformed_boolean_is_a_clear_error():
    result = load_settings(DEBUG="maybe")

    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_production_refuses_to_start_without_a_credentials_key():
    result = load_settings(DEBUG="0", SECRET_KEY=GOOD_KEY, ALLOWED_HOSTS="example.com")

    assert result.returncode != 0
    assert "PREBOOKING_CREDENTIALS_KEY must be set" in result.stderr


def test_a_malformed_credentials_key_is_refused_without_echoing_it():
    result = load_settings(
        DEBUG="0",
        SECRET_KEY=GOOD_KEY,
        ALLOWED_HOSTS="example.com",
        PREBOOKING_CREDENTIALS_KEY=f"{CREDENTIALS_KEY},not-a-fernet-key",
        METRICS_TOKEN="metrics-token",
    )

    assert result.returncode != 0
    assert "key 2 is not a Fernet key" in result.stderr
    assert "not-a-fernet-key" not in result.stderr


# Production settings complete but for the /metrics choice.
WITHOUT_METRICS_CHOICE = {
    "DEBUG": "0",
    "SECRET_KEY": GOOD_KEY,
    "ALLOWED_HOSTS": "example.com",
    "PREBOOKING_CREDENTIALS_KEY": CREDENTIALS_KEY,
}


def test_production_refuses_to_start_without_a_metrics_token():
    result = load_settings(**WITHOUT_METRICS_CHOICE)

    assert result.returncode != 0
    assert "METRICS_TOKEN must be set" in result.stderr


def test_production_serves_public_metrics_only_when_told_so():
    result = load_settings(**WITHOUT_METRICS_CHOICE, METRICS_PUBLIC="1")

    assert result.returncode == 0, result.stderr + result.stdout
