"""System checks of prebooking's settings (run by manage.py check, migrate and the workers)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def credentials_keys(app_configs: object = None, **kwargs: object) -> list[Error]:
    """PREBOOKING_CREDENTIALS_KEY holds Fernet keys: a malformed one would fail every link."""
    from prebooking.providers.credentials import validate_keys

    try:
        validate_keys(settings.PREBOOKING_CREDENTIALS_KEYS)
    except ValueError as exc:
        return [Error(str(exc), id="prebooking.E001")]
    return []
