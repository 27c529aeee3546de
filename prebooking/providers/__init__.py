"""The configured gym booking providers, one persistent instance each per process."""

from __future__ import annotations

import threading

from django.conf import settings

from prebooking.providers.base import Provider
from prebooking.providers.http import HttpProvider

_providers: dict[str, HttpProvider] = {}
_providers_lock = threading.Lock()


def _aimharder() -> Provider:
    from prebooking.providers.aimharder.accounts import account_credentials
    from prebooking.providers.aimharder.provider import AimHarderProvider

    return AimHarderProvider(credentials=account_credentials)


# Providers with a client of their own rather than the generic HTTP contract, by name. They are
# not offered by the generic form (provider_choices): each has its own pages.
SPECIAL_PROVIDERS = {"aimharder": _aimharder}
_special: dict[str, Provider] = {}


def get_provider(name: str) -> Provider:
    """The configured provider called `name` (one persistent instance per process)."""
    if name in SPECIAL_PROVIDERS:
        with _providers_lock:
            if name not in _special:
                _special[name] = SPECIAL_PROVIDERS[name]()
            return _special[name]
    config = settings.PREBOOKING_PROVIDERS[name]
    with _providers_lock:
        provider = _providers.get(name)
        if provider is None or provider.url != config["url"].rstrip("/"):
            provider = HttpProvider(
                name, config["url"], config.get("token", ""), settings.PREBOOKING_HTTP_TIMEOUT
            )
            _providers[name] = provider
        return provider


def close_providers() -> None:
    """Close every provider's persistent connections (tests, settings changes)."""
    with _providers_lock:
        for provider in _providers.values():
            if provider._client is not None:
                provider._client.close()
        _providers.clear()
        for provider in _special.values():
            provider.close()
        _special.clear()


def prepare_seconds(name: str) -> float:
    """How long before the instant the provider `name` wants its requests prepared."""
    if name in SPECIAL_PROVIDERS:
        return float(getattr(settings, f"{name.upper()}_PREPARE_SECONDS"))
    return float(settings.PREBOOKING_PREPARE_SECONDS)


def provider_choices() -> list[tuple[str, str]]:
    """(name, label) of every configured provider, for forms."""
    return [(name, config["label"]) for name, config in settings.PREBOOKING_PROVIDERS.items()]
