"""Waiting for real processes (workers, servers) that tests start to reach a state."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, poll: float = 0.05) -> bool:
    """True as soon as `condition()` holds, False if it still does not after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return condition()
