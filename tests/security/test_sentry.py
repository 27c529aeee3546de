"""Sentry: on only with SENTRY_DSN, without personal data, every event redacted before it leaves."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.transport import Transport

from core.redaction import REDACTED, sentry_before_send
from tests.security.urls import LIVE_KEY

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "whsec_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
PROBE = """
import json, django, sentry_sdk
django.setup()
client = sentry_sdk.get_client()
options = client.options if client.is_active() else {}
print(json.dumps({
    "active": client.is_active(),
    "send_default_pii": options.get("send_default_pii"),
    "before_send": getattr(options.get("before_send"), "__qualname__", None),
    "max_request_body_size": options.get("max_request_body_size"),
}))
"""


def sentry_state(**env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    environment.update(DATABASE_URL="postgres://unused@localhost/unused", LOG_LEVEL="ERROR", **env)
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_sentry_is_off_without_a_dsn():
    assert sentry_state()["active"] is False


def test_sentry_is_on_with_a_dsn_without_personal_data_and_with_redaction():
    state = sentry_state(SENTRY_DSN="https://public@sentry.example.invalid/1")

    assert state == {
        "active": True,
        "send_default_pii": False,
        "before_send": "sentry_before_send",
        "max_request_body_size": "never",
    }


class CapturingTransport(Transport):
    """Stands in for Sentry's servers: keeps the events instead of sending them."""

    def __init__(self, options=None):
        super().__init__(options)
        self.events: list[dict] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        for item in envelope.items:
            if item.type == "event":
                self.events.append(item.payload.json)


@pytest.fixture
def sentry_events():
    transport = CapturingTransport()
    sentry_sdk.init(
        dsn="https://public@sentry.example.invalid/1",
        transport=transport,
        send_default_pii=False,
        before_send=sentry_before_send,
        default_integrations=False,  # no global patching of Django beyond this test
        integrations=[LoggingIntegration()],
    )
    yield transport.events
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


# sentry-sdk 2.75 deprecates send_default_pii for data_collection, but giving data_collection
# turns Sentry's own EventScrubber off: we keep send_default_pii=False and the scrubber.
@pytest.mark.filterwarnings("ignore:The send_default_pii option is deprecated")
def test_exception_events_are_redacted_in_message_locals_and_breadcrumbs(sentry_events):
    logging.getLogger("tests.security").warning("retrying with %s", WEBHOOK_SECRET)
    try:
        api_key = LIVE_KEY
        headers = {
            "Stripe-Signature": "t=1,v1=" + "ab" * 32,
            "Authorization": "Bearer abcdefgh1234",
        }
        raise RuntimeError(f"Stripe refused {api_key}; headers {headers}")
    except RuntimeError:
        sentry_sdk.capture_exception()
    sentry_sdk.flush()

    assert len(sentry_events) == 1
    sent = json.dumps(sentry_events[0])
    assert "Stripe refused" in sent  # the event is useful ...
    assert "retrying with" in sent  # ... and keeps the breadcrumb trail
    for secret in (LIVE_KEY, WEBHOOK_SECRET, "ab" * 32, "abcdefgh1234"):
        assert secret not in sent  # ... without any secret


def test_before_send_blanks_secret_named_fields_and_keeps_the_rest():
    event = {
        "request": {
            "url": "https://example.com/billing/webhooks/stripe/",
            "headers": {"Stripe-Signature": "t=1,v1=00ff", "Cookie": "sessionid=abc", "Host": "x"},
        },
        "extra": {"stripe_api_key": "anything", "event_id": "evt_123", "count": 3},
    }

    scrubbed = sentry_before_send(event, {})

    assert scrubbed["request"]["headers"] == {
        "Stripe-Signature": REDACTED,
        "Cookie": REDACTED,
        "Host": "x",
    }
    assert scrubbed["extra"] == {"stripe_api_key": REDACTED, "event_id": "evt_123", "count": 3}
    assert scrubbed["request"]["url"] == event["request"]["url"]
