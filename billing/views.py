"""Stripe's webhook endpoint: verify, store, enqueue, answer. Nothing else happens here."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import stripe
from django.conf import settings
from django.db import DataError, InterfaceError, InternalError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from billing.services import ingest_event

logger = logging.getLogger(__name__)

# What is storable. Real Stripe events nest about 10 levels (event, data, object, lines, data,
# item, price, ...) and carry no number longer than 19 digits; these limits are far above both,
# and far below what breaks a parser (Python's recursion limit, its 4,300-digit int limit) or a
# page that shows the payload.
MAX_DEPTH = 32
MAX_NUMBER_DIGITS = 100


class BodyProblem(ValueError):
    """A signed body that is JSON but not storable; the message is the answer's reason."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise BodyProblem(f"body has a number of more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyProblem(f"body has a number out of range ({text[:30]})")
    return value


def _parse_constant(name: str) -> None:
    raise BodyProblem(f"body has {name}, which JSON does not allow")


def deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects in `value` nest more than `limit` levels (iterative: no stack)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_body(body: bytes) -> Any:
    """The parsed JSON body, or BodyProblem saying why it cannot be stored as it is."""
    try:
        parsed = json.loads(
            body,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except BodyProblem:
        raise
    except RecursionError:
        # The C parser recurses once per level; it gives up near Python's recursion limit.
        raise BodyProblem(f"body nests more than {MAX_DEPTH} levels deep") from None
    except ValueError:
        raise BodyProblem("body is not JSON") from None
    if isinstance(parsed, dict | list) and deeper_than(parsed, MAX_DEPTH):
        raise BodyProblem(f"body nests more than {MAX_DEPTH} levels deep")
    return parsed


def _reason(status: int, reason: str) -> JsonResponse:
    return JsonResponse({"error": reason}, status=status)


def webhook_secrets() -> list[str]:
    """The accepted signing secrets: several during a rotation, any one of them verifies."""
    return [
        secret.strip() for secret in settings.STRIPE_WEBHOOK_SECRET.split(",") if secret.strip()
    ]


def signature_problem(body: bytes, header: str | None) -> str | None:
    """None when `header` signs `body` with one of the configured secrets, else why not."""
    if not header:
        return "missing Stripe-Signature header"
    parts = [item.split("=", 1) for item in header.split(",")]
    timestamps = [value for key, *value in parts if key.strip() == "t" and value]
    if len(timestamps) != 1 or not timestamps[0][0].isdigit():
        return "malformed Stripe-Signature header"
    if not any(key.strip() == "v1" and value for key, *value in parts):
        return "malformed Stripe-Signature header: no v1 signature"
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid signature"  # Stripe signs UTF-8 JSON; these bytes are not that.
    tolerance = settings.STRIPE_WEBHOOK_TOLERANCE
    for secret in webhook_secrets():
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=tolerance)
            return None
        except stripe.SignatureVerificationError:
            pass
        # Tell a replay (a good signature on an old timestamp) from a wrong signature.
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
            return f"timestamp outside the {tolerance} s tolerance"
        except stripe.SignatureVerificationError:
            continue
    return "invalid signature"


def event_problem(event: Any) -> str | None:
    """None when the parsed body has the shape of a Stripe event, else what is wrong."""
    if not isinstance(event, dict) or event.get("object") != "event":
        return "not a Stripe event"
    stripe_id, event_type = event.get("id"), event.get("type")
    if not isinstance(stripe_id, str) or not stripe_id.startswith("evt_") or len(stripe_id) > 255:
        return "not a Stripe event: bad id"
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        return "not a Stripe event: bad type"
    created = event.get("created")
    if not isinstance(created, int) or isinstance(created, bool) or not 0 < created < 2**34:
        return "not a Stripe event: bad created"
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        return "not a Stripe event: no data.object"
    api_version = event.get("api_version")
    if api_version is not None and (not isinstance(api_version, str) or len(api_version) > 64):
        return "not a Stripe event: bad api_version"
    return None


def webhook_body(request: HttpRequest) -> bytes | JsonResponse:
    """A webhook's raw body, or the answer when it cannot be one: 405 for anything but POST,
    413 past STRIPE_WEBHOOK_MAX_BYTES (declared or read: never more than that is read)."""
    if request.method != "POST":
        response = _reason(405, "method not allowed")
        response["Allow"] = "POST"
        return response
    max_bytes = settings.STRIPE_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _reason(400, "malformed Content-Length")
    if declared > max_bytes:
        return _reason(413, f"body over {max_bytes} bytes")
    body = request.read(max_bytes + 1)
    if len(body) > max_bytes:
        return _reason(413, f"body over {max_bytes} bytes")
    return body


@csrf_exempt
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """Receive one Stripe event: 200 when stored (or already stored), 4xx for bad input."""
    body = webhook_body(request)
    if isinstance(body, JsonResponse):
        return body
    if not webhook_secrets():
        logger.error("STRIPE_WEBHOOK_SECRET is not set: refusing webhooks until it is")
        return _reason(503, "webhook secret not configured")

    problem = signature_problem(body, request.headers.get("Stripe-Signature"))
    if problem:
        logger.info("stripe webhook refused: %s", problem)
        return _reason(400, problem)
    try:
        event = parse_body(body)
    except BodyProblem as exc:
        logger.info("stripe webhook refused: %s", exc)
        return _reason(400, str(exc))
    problem = event_problem(event)
    if problem:
        logger.info("stripe webhook refused: %s", problem)
        return _reason(400, problem)

    try:
        stored = ingest_event(event, raw=body.decode())
    except DataError:
        # Signed but unstorable (e.g. a \u0000 that jsonb refuses): bad input, not our outage.
        logger.warning("stripe event %s type=%s unstorable", event["id"], event["type"])
        return _reason(400, "event cannot be stored")
    except (OperationalError, InterfaceError, InternalError) as exc:
        logger.error("stripe event %s not stored: %s", event["id"], exc.__class__.__name__)
        return _reason(503, "database unavailable, retry later")
    if stored is None:
        return JsonResponse({"received": True, "duplicate": True})
    return JsonResponse({"received": True})
