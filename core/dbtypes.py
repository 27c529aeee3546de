"""Reading timestamps Python cannot hold without failing the whole query.

PostgreSQL's timestamptz runs to the year 294276; Python's datetime stops at 9999. A row that
holds a later (or BC) time, however it got there, made psycopg raise "timestamp too large"
for every query that read it: an admin list then answered 500 for every staff user, and the
row could not even be deleted. Such values read as datetime.max / datetime.min (UTC) instead,
which any page shows as an absurd date a person can see and fix.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg import DataError
from psycopg.types.datetime import TimestamptzLoader

FAR_FUTURE = datetime.max.replace(tzinfo=UTC)
FAR_PAST = datetime.min.replace(tzinfo=UTC)


def _loader_for(tz: Any) -> type[TimestamptzLoader]:
    class SaneTimestamptzLoader(TimestamptzLoader):
        timezone = tz  # Django's backend re-registers its loader when this differs

        def load(self, data: Any) -> datetime:
            try:
                value = super().load(data)
            except DataError:
                text = bytes(data)
                past = text.startswith(b"-") or text.endswith(b"BC")
                value = FAR_PAST if past else FAR_FUTURE
            return value.replace(tzinfo=self.timezone)

    return SaneTimestamptzLoader


def register_sane_timestamps(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created receiver: install the tolerant loader on a new PostgreSQL connection."""
    if connection.vendor != "postgresql":
        return
    connection.connection.adapters.register_loader("timestamptz", _loader_for(connection.timezone))
