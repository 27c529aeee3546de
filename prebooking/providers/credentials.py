"""Gym account secrets encrypted at rest: Fernet tokens under a MultiFernet of our keys.

PREBOOKING_CREDENTIALS_KEY holds one or more Fernet keys, newest first: the first encrypts,
every one decrypts, so a new key can be put in front, `manage.py rotate_gym_credentials`
re-encrypts every stored secret with it, and the old key is dropped afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

DEVELOPMENT_LABEL = b"prebooking-credentials-development-key"


class CredentialsError(Exception):
    """A stored secret cannot be decrypted with the configured keys."""


def derive_development_key(secret_key: str) -> str:
    """A Fernet key derived from SECRET_KEY (HMAC-SHA256 with a label), for development only.

    Derived rather than a constant so that two development databases do not share one key, and
    one-way so that the derived key does not reveal SECRET_KEY.
    """
    digest = hmac.new(secret_key.encode(), DEVELOPMENT_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()


def validate_keys(keys: list[str]) -> list[Fernet]:
    """The configured keys as Fernets; ValueError naming the position of a malformed one."""
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            # Never echo the key itself: it is a secret even when malformed.
            raise ValueError(
                f"PREBOOKING_CREDENTIALS_KEY: key {position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from None
    return fernets


def configured_keys() -> list[str]:
    """PREBOOKING_CREDENTIALS_KEYS, or in development (none set) a key derived from SECRET_KEY;
    settings refuse to start without keys when DEBUG is off."""
    from django.conf import settings

    return settings.PREBOOKING_CREDENTIALS_KEYS or [derive_development_key(settings.SECRET_KEY)]


def _cipher() -> MultiFernet:
    return MultiFernet(validate_keys(configured_keys()))


def encrypt(secret: str) -> str:
    """A Fernet token (text) of `secret` under the newest key."""
    return _cipher().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    """The secret inside `token`; CredentialsError when no configured key opens it."""
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialsError(
            "stored credentials cannot be decrypted with PREBOOKING_CREDENTIALS_KEY "
            "(was a key removed before rotating?)"
        ) from None


def rotate(token: str) -> str:
    """`token` re-encrypted under the newest key (MultiFernet.rotate)."""
    try:
        return _cipher().rotate(token.encode()).decode()
    except InvalidToken:
        raise CredentialsError("stored credentials cannot be decrypted for rotation") from None
