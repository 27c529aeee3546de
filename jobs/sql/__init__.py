"""The queue's SQL: named statements read once from queries.sql (Procrastinate's layout).

Each statement starts at a ``-- name: <name>`` line and runs to the next one; the comment lines
right after the name say what it does (whole-line comments are not sent to the server).
``QUERIES["claim"]`` is the text to execute; the statements every event runs go through
:func:`prepared_cursor`.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from django.db import connection as default_connection
from django.db.backends.utils import CursorWrapper

_NAME = re.compile(r"^-- name: (?P<name>\w+)\s*$", re.MULTILINE)


def load(path: Path) -> dict[str, str]:
    """Named statements of a .sql file: {name: statement}."""
    text = path.read_text()
    marks = list(_NAME.finditer(text))
    queries = {}
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        body = text[mark.end() : following.start() if following else len(text)]
        # Whole-line comments document the statement; the driver would read a % in them.
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        queries[mark["name"]] = "\n".join(lines).strip().rstrip(";")
    return queries


QUERIES = load(Path(__file__).with_name("queries.sql"))


class _PreparedCursor(psycopg.Cursor):
    """Parameters bound by the server, and each statement prepared on first use."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        prepare = True if prepare is None else prepare
        return super().execute(query, params, prepare=prepare, binary=binary)


def prepared_cursor(connection=default_connection) -> CursorWrapper:
    """A cursor of `connection` (in its transaction) for named statements run per event.

    Django's cursors bind parameters on the client (a 3 KB payload is quoted in Python) and the
    server parses and plans every statement anew (Django turns psycopg's preparing off); here
    the server binds them, and plans each statement once per connection. Errors are Django's,
    as from connection.cursor().
    """
    connection.ensure_connection()
    return CursorWrapper(_PreparedCursor(connection.connection), connection)
