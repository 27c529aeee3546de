"""A cache backend with atomic counters in PostgreSQL, for django-ratelimit.

Why not Django's DatabaseCache: its ``incr`` is a read then a write, so concurrent requests
from one client lose increments (django-ratelimit refuses it, check E003). Here ``add`` and
``incr`` are each one SQL statement, so N requests count N whatever the number of workers.
Only what django-ratelimit calls is supported: add, incr, get, set, delete, clear.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.db import connection
from django.utils import timezone

TABLE = "rate_limit_counter"  # accounts.RateLimitCounter


class PostgresCounterCache(BaseCache):
    """Integer values only, expiring after their timeout."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)

    def _expiry(self, timeout: Any) -> datetime:
        expires = self.get_backend_timeout(timeout)  # epoch seconds, or None for never
        if expires is None:
            return timezone.now() + timedelta(days=3650)
        return datetime.fromtimestamp(expires, tz=UTC)

    def add(
        self, key: str, value: int, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        key = self.make_and_validate_key(key, version=version)
        now = timezone.now()
        with connection.cursor() as cursor:
            # Expired windows are dead rows: clear them as new ones start (index on expires_at).
            cursor.execute(f"DELETE FROM {TABLE} WHERE expires_at <= %s", [now])  # noqa: S608
            cursor.execute(
                f"INSERT INTO {TABLE} AS c (key, count, expires_at) VALUES (%s, %s, %s) "  # noqa: S608
                "ON CONFLICT (key) DO UPDATE SET count = EXCLUDED.count, "
                "expires_at = EXCLUDED.expires_at WHERE c.expires_at <= %s RETURNING 1",
                [key, int(value), self._expiry(timeout), now],
            )
            return cursor.fetchone() is not None

    def incr(self, key: str, delta: int = 1, version: int | None = None) -> int:
        key = self.make_and_validate_key(key, version=version)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {TABLE} SET count = count + %s "  # noqa: S608
                "WHERE key = %s AND expires_at > %s RETURNING count",
                [int(delta), key, timezone.now()],
            )
            row = cursor.fetchone()
        if row is None:
            raise ValueError(f"Key '{key}' not found")
        return row[0]

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count FROM {TABLE} WHERE key = %s AND expires_at > %s",  # noqa: S608
                [key, timezone.now()],
            )
            row = cursor.fetchone()
        return default if row is None else row[0]

    def set(
        self, key: str, value: int, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        key = self.make_and_validate_key(key, version=version)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {TABLE} (key, count, expires_at) VALUES (%s, %s, %s) "  # noqa: S608
                "ON CONFLICT (key) DO UPDATE SET count = EXCLUDED.count, "
                "expires_at = EXCLUDED.expires_at",
                [key, int(value), self._expiry(timeout)],
            )

    def delete(self, key: str, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE} WHERE key = %s", [key])  # noqa: S608
            return cursor.rowcount > 0

    def clear(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE}")  # noqa: S608
