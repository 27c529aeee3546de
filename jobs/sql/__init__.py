"""The queue's SQL: named statements read once from queries.sql (Procrastinate's layout).

Each statement starts at a ``-- name: <name>`` line and runs to the next one; the comment lines
right after the name say what it does (whole-line comments are not sent to the server).
``QUERIES["claim"]`` is the text to execute.
"""

from __future__ import annotations

import re
from pathlib import Path

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
