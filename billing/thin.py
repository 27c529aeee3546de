"""Stripe's thin events (v2 event notifications): verify with the stripe library, store, enqueue.

An event destination posts a small signed notification naming the object that changed; the
processing job fetches that object with the API and applies it through the v1 handlers
(billing.handlers.refetch.thin_current). Stored once in StripeEvent (kind thin, unique
stripe_id), processed by the same billing.process_event job as snapshot events, so retries,
dead letters and the admin's replay work alike.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from typing import Any

import stripe
from django.conf import settings
from django.db import DataError, IntegrityError, InterfaceError, InternalError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from billing.models import StripeEvent
from billing.services import store_event
from billing.views import BodyProblem, parse_body, webhook_body

logger = logging.getLogger(__name__)


# related_object.url as Stripe sends it: /v1/... or /v2/... segments of ids and names, no
# host, query, "." or ".." (docs.stripe.com/api/v2/core/events/object).
STRIPE_API_PATH = re.compile(r"/v[12](?:/(?!\.\.?(?:/|$))[A-Za-z0-9_.\-]+)+")


class NotThin(ValueError):
    """The body verified but is not a thin event notification we can store."""


def _reason(status: int, reason: str) -> JsonResponse:
    return JsonResponse({"error": reason}, status=status)


def thin_secrets() -> list[str]:
    """The destination's signing secrets: several during a rotation, any one verifies."""
    raw = settings.STRIPE_THIN_WEBHOOK_SECRET
    return [secret.strip() for secret in raw.split(",") if secret.strip()]


def _parser() -> stripe.StripeClient:
    # Parsing needs no key; the job that fetches the object uses billing.stripe_api.client.
    return stripe.StripeClient(settings.STRIPE_API_KEY or "")


def parse_notification(body: bytes, header: str | None) -> dict[str, Any]:
    """The verified notification as JSON data, through `StripeClient.parse_event_notification`.

    Raises stripe.SignatureVerificationError when no configured secret verifies the body
    within STRIPE_WEBHOOK_TOLERANCE, NotThin when it verifies but is no thin notification.
    """
    if not header:
        raise stripe.SignatureVerificationError("missing Stripe-Signature header", header, body)
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise stripe.SignatureVerificationError("invalid signature", header, body) from exc
    parser, tolerance = _parser(), settings.STRIPE_WEBHOOK_TOLERANCE
    for secret in thin_secrets():
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=tolerance)
        except stripe.SignatureVerificationError:
            continue
        # Signed: now the snapshot endpoint's parsing limits (depth, digits, NaN), before the
        # stripe library parses it again without them.
        try:
            data = parse_body(body)
        except BodyProblem as exc:
            raise NotThin(f"not a thin event notification: {exc}") from None
        try:
            notification = parser.parse_event_notification(payload, header, secret, tolerance)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise NotThin(f"not a thin event notification: {exc}") from exc
        return _checked(notification, data)
    for secret in thin_secrets():
        # Tell a replay (a good signature on an old timestamp) from a wrong signature.
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
        except stripe.SignatureVerificationError:
            continue
        raise stripe.SignatureVerificationError(
            f"timestamp outside the {tolerance} s tolerance", header, body
        )
    raise stripe.SignatureVerificationError("invalid signature", header, body)


def _checked(notification: Any, data: Any) -> dict[str, Any]:
    """What we store, once the fields we rely on have the shape Stripe documents."""
    if not isinstance(data, dict):
        raise NotThin("not a thin event notification")
    stripe_id, event_type = notification.id, notification.type
    if not isinstance(stripe_id, str) or not stripe_id.startswith("evt_") or len(stripe_id) > 255:
        raise NotThin("not a thin event notification: bad id")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        raise NotThin("not a thin event notification: bad type")
    try:
        created = datetime.fromisoformat(notification.created)
    except (TypeError, ValueError) as exc:
        raise NotThin("not a thin event notification: bad created") from exc
    if created.tzinfo is None:
        raise NotThin("not a thin event notification: created without a time zone")
    related = data.get("related_object")
    if related is not None and not (
        isinstance(related, dict) and all(isinstance(related.get(k), str) for k in ("id", "url"))
    ):
        raise NotThin("not a thin event notification: bad related_object")
    if related is not None and not STRIPE_API_PATH.fullmatch(related["url"]):
        # The job fetches this URL with our API key: only a path of Stripe's API, nothing else.
        raise NotThin("not a thin event notification: related_object.url is no Stripe API path")
    return {"data": data, "created": created, "livemode": bool(notification.livemode)}


def store_notification(parsed: dict[str, Any]) -> int | None:
    """Store a verified notification once with its processing job; None for a duplicate."""
    data = parsed["data"]
    return store_event(
        stripe_id=data["id"],
        event_type=data["type"],
        created=parsed["created"],
        payload=json.dumps(data),
        kind=StripeEvent.Kind.THIN,
        livemode=parsed["livemode"],
    )


@csrf_exempt
def stripe_thin_webhook(request: HttpRequest) -> JsonResponse:
    """Receive one thin event notification: 200 when stored (or already), 4xx for bad input."""
    body = webhook_body(request)
    if isinstance(body, JsonResponse):
        return body
    if not thin_secrets():
        logger.error("STRIPE_THIN_WEBHOOK_SECRET is not set: refusing thin events until it is")
        return _reason(503, "thin webhook secret not configured")
    try:
        parsed = parse_notification(body, request.headers.get("Stripe-Signature"))
    except stripe.SignatureVerificationError as exc:
        reason = exc.user_message or "invalid signature"
        logger.info("stripe thin webhook refused: %s", reason)
        return _reason(400, reason)
    except NotThin as exc:
        logger.info("stripe thin webhook refused: %s", exc)
        return _reason(400, str(exc))
    try:
        stored = store_notification(parsed)
    except (DataError, IntegrityError):
        # Signed but unstorable (a value PostgreSQL refuses): bad input, not our outage.
        return _reason(400, "event cannot be stored")
    except (OperationalError, InterfaceError, InternalError) as exc:
        logger.error("stripe thin event not stored: %s", exc.__class__.__name__)
        return _reason(503, "database unavailable, retry later")
    if stored is None:
        return JsonResponse({"received": True, "duplicate": True})
    logger.info(
        "stripe thin event %s type=%s stored as %s",
        parsed["data"]["id"],
        parsed["data"]["type"],
        stored,
    )
    return JsonResponse({"received": True})
