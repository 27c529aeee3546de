"""The liveness endpoint, against the real database."""

from __future__ import annotations

import pytest
from django.db import connection


@pytest.mark.django_db
def test_healthz_answers_ok_when_database_answers(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_healthz_answers_503_with_reason_when_database_is_down(client, settings):
    # Point the live connection at a port where nothing listens: a real failed connect.
    connection.close()
    real = dict(connection.settings_dict)
    connection.settings_dict.update(
        {"HOST": "127.0.0.1", "PORT": "1", "OPTIONS": {"connect_timeout": 1}}
    )
    try:
        response = client.get("/healthz")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(real)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert "database unavailable" in body["reason"]


@pytest.mark.django_db
def test_every_response_carries_a_request_id(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")

    assert response["X-Request-ID"] == "abc-123"
