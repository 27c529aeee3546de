"""Answer a few requests with the production settings (DEBUG off) and print what came back.

Run by tests/security/test_headers.py as a separate process, because settings are read once
at start-up: the environment decides them, as it does under gunicorn.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import transaction
    from django.test import Client

    assert not settings.DEBUG

    def describe(response) -> dict:
        return {
            "status": response.status_code,
            "location": response.get("Location", ""),
            "headers": dict(response.headers),
            "cookies": {
                name: {
                    "secure": bool(morsel["secure"]),
                    "httponly": bool(morsel["httponly"]),
                    "samesite": morsel["samesite"],
                }
                for name, morsel in response.cookies.items()
            },
        }

    client = Client(raise_request_exception=False)
    proxied = {"HTTP_X_FORWARDED_PROTO": "https"}
    results = {
        "http": describe(client.get("/accounts/login/")),
        "healthz_http": describe(client.get("/healthz")),
        "login_page": describe(client.get("/accounts/login/", **proxied)),
    }

    class Rollback(Exception):
        pass

    try:
        with transaction.atomic():  # leave nothing behind in the test database
            User.objects.create_user("probe", "probe@example.com", "probe passphrase 123")
            results["login"] = describe(
                client.post(
                    "/accounts/login/",
                    {"username": "probe", "password": "probe passphrase 123"},
                    **proxied,
                )
            )
            raise Rollback
    except Rollback:
        pass
    Path(sys.argv[1]).write_text(json.dumps(results))  # stdout carries the logs


if __name__ == "__main__":
    main()
