"""An error's fingerprint: its exception type and its message with the varying parts masked.

A hundred dead letters that failed for one reason differ only in the ids, numbers and
addresses their messages name; masking those makes them one group staff can act on at once.
The fingerprint is worked out once, when the attempt fails, and stored on the job.
"""

from __future__ import annotations

import re

MAX_FINGERPRINT_CHARS = 200

# Most specific first: a UUID or a Stripe id would otherwise be cut into numbers.
_MASKS = [
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b[a-z]{2,10}_[A-Za-z0-9]{6,}\b"), "<id>"),  # evt_1Nx..., cus_..., in_...
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b", re.I), "<hex>"),  # digests, tokens
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
]


def fingerprint(error: str) -> str:
    """The group an error belongs to: "Type: message" with ids, numbers and hex masked.

    Only the first line counts: a message's later lines (a response body, a hint) vary more
    than they say what went wrong.
    """
    first_line = error.strip().splitlines()[0] if error.strip() else ""
    for pattern, mask in _MASKS:
        first_line = pattern.sub(mask, first_line)
    return first_line[:MAX_FINGERPRINT_CHARS]
