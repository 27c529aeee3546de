"""Keep secrets out of logs, stored tracebacks, error e-mails and Sentry events.

`redact(text)` replaces the configured secret values (SECRET_KEY, Stripe keys, webhook secrets,
the database password, ESP credentials) and anything shaped like a secret (Stripe key prefixes,
signature and Authorization headers, ``password=...``-style pairs, credentials in URLs).
Settings are read once and again after ``setting_changed`` (tests override them); a key rotated
in the environment is covered after a restart.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 8  # shorter configured values would clobber ordinary words

# A quote as it appears in text, or HTML-escaped in the error report pages.
_QUOTE = r"(?:['\"]|&quot;|&#x27;|&#39;)"
# Each pattern runs only when the lower-cased text contains one of its trigger words: most log
# lines contain none, and skipping the regex scan makes redact() much cheaper for them.
_PATTERNS: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    # Stripe secret and restricted keys, webhook signing secrets.
    (
        re.compile(r"\b((?:sk|rk)_(?:live|test)_)[0-9A-Za-z]{6,}"),
        rf"\1{REDACTED}",
        ("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
    ),
    (re.compile(r"\b(whsec_)[0-9A-Za-z+/=_-]{4,}"), rf"\1{REDACTED}", ("whsec_",)),
    # The HMACs in a Stripe-Signature header: t=...,v1=<hex>,v0=<hex>.
    (re.compile(r"\b(v[01]=)[0-9a-fA-F]{16,}"), rf"\1{REDACTED}", ("v1=", "v0=")),
    # Authorization / Stripe-Signature header values, in any of the shapes logs and reprs take.
    (
        re.compile(
            rf"(?i)((?:http_)?(?:authorization|stripe[-_]signature){_QUOTE}?\s*[:=]\s*{_QUOTE}?)"
            r"(?:(bearer|basic|token)\s+)?[^\s'\",;}]+(?:,[^\s'\",;}]+)*"
        ),
        rf"\1\2 {REDACTED}",
        ("authorization", "signature"),
    ),
    (
        re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
        rf"\1 {REDACTED}",
        ("bearer", "basic"),
    ),
    # key=value / "key": "value" pairs whose key names a secret (form data, reprs, JSON, env).
    (
        re.compile(
            rf"(?i)\b([\w-]*(?:password|passwd|secret|api[_-]?key|token|dsn)[\w-]*{_QUOTE}?"
            rf"\s*[:=]\s*{_QUOTE}?)([^\s'\"&,;}}]+)"
        ),
        rf"\1{REDACTED}",
        ("password", "passwd", "secret", "api_key", "api-key", "apikey", "token", "dsn"),
    ),
    # user:password@host in URLs (DATABASE_URL, SENTRY_DSN, broker URLs).
    (
        re.compile(r"\b([a-z][a-z0-9+.-]*://[^:/\s@]*:)[^@\s/]+(@)"),
        rf"\1{REDACTED}\2",
        ("://",),
    ),
]
_SENSITIVE_KEY = re.compile(
    r"(?i)password|passwd|secret|api[_-]?key|token|authorization|signature|cookie|session|dsn"
    r"|credential|private"
)


_SECRET_SETTINGS = (
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "PREBOOKING_CREDENTIALS_KEYS",
    "STRIPE_API_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_WEBHOOK_SECRETS",
    "EMAIL_HOST_PASSWORD",
    "SENTRY_DSN",
    "METRICS_TOKEN",
    "ALERT_WEBHOOK_URL",
    "ANYMAIL",
)


_secrets: tuple[str, ...] | None = None


def configured_secrets() -> tuple[str, ...]:
    """The secret values this deployment is configured with, longest first.

    Read from the settings once (every log line is redacted: reading a dozen settings per line
    cost more than writing it) and again after a change of one of them (override_settings in
    tests sends ``setting_changed``); a key rotated in the environment counts after a restart.
    """
    global _secrets
    from django.conf import settings

    if _secrets is not None:
        return _secrets
    if not settings.configured:
        return ()
    raw = [getattr(settings, name, None) for name in _SECRET_SETTINGS]
    raw += [database.get("PASSWORD") for database in getattr(settings, "DATABASES", {}).values()]
    _secrets = _secret_values(raw)
    return _secrets


@receiver(setting_changed)
def _forget_secrets(*, setting: str, **kwargs: object) -> None:
    global _secrets
    if setting in _SECRET_SETTINGS or setting == "DATABASES":
        _secrets = None


def _secret_values(raw: list[Any]) -> tuple[str, ...]:
    """The flattened, de-duplicated values of `raw` that are long enough to redact."""
    values: list[str] = []

    def add(value: Any) -> None:
        if isinstance(value, str):  # a comma-separated list (secrets during a rotation) too
            values.extend([value, *(part.strip() for part in value.split(","))])
        elif isinstance(value, dict):
            for item in value.values():
                add(item)
        elif isinstance(value, Iterable) and not isinstance(value, bytes):
            for item in value:
                add(item)

    add(raw)
    return tuple(sorted({v for v in values if len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True))


def redact(text: str) -> str:
    """Return `text` with configured secrets and secret-shaped values replaced by [REDACTED]."""
    if not text:
        return text
    for secret in configured_secrets():
        text = text.replace(secret, REDACTED)
    lowered = text.lower()
    for pattern, replacement, triggers in _PATTERNS:
        if any(word in lowered for word in triggers):
            text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Logging filter: redact the message, its arguments and the formatted traceback.

    Put it on handlers (not loggers): a logger's filters do not see records propagated from its
    children. It rewrites the record, so every later handler sees the redacted text too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call still gets logged, redacted, as its raw parts
            message = f"{record.msg} {record.args}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 30:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and _SENSITIVE_KEY.search(key) and value[key]
            else _scrub(value[key], depth + 1)
            for key in value
        }
    if isinstance(value, list | tuple):
        return [_scrub(item, depth + 1) for item in value]
    return value


def sentry_before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Sentry hook: redact every string in the event and blank values under secret-named keys.

    Covers exception messages, stack-frame local variables, breadcrumbs (log lines), request
    headers and extra data.
    """
    return _scrub(event)
