"""The clients' timeout convention (confluent-kafka's): a timeout in seconds, where None or a
negative value means wait forever.

    deadline = deadline_after(timeout)     # a time.monotonic() instant, or None: no deadline
    ...
    cond.wait(time_left(deadline))         # seconds left (never negative), or None: forever

Thread-safety: pure functions.
"""

from __future__ import annotations

import time


def deadline_after(timeout: float | None) -> float | None:
    """The monotonic instant `timeout` seconds from now; None for no deadline."""
    if timeout is None or timeout < 0:
        return None
    return time.monotonic() + timeout


def time_left(deadline: float | None) -> float | None:
    """Seconds until `deadline` (0.0 once passed); None when there is no deadline."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())
