"""Named failpoints at crash-relevant steps (bbolt's gofail, in Python).

Code marks a step with `failpoints.hit("coordinator.after_prepare")`. Normally that costs one dict
lookup and does nothing. A test arms a point with an action:

    "crash"   os.kill(getpid(), SIGKILL): the process dies exactly there, as with kill -9;
    "raise"   raise FailpointTriggered (in-process tests of error paths);
    callable  call it (e.g. to block or count).

Points can also be armed for a child process through the environment:
LOGSTORE_FAILPOINTS="name=crash,other=raise". `count` limits how many hits fire (default all);
`skip` lets that many hits pass first.

Thread-safety: arming is expected before the code under test runs; hit() only reads.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Callable

ENV_VAR = "LOGSTORE_FAILPOINTS"


class FailpointTriggered(RuntimeError):
    """Raised by a failpoint armed with the "raise" action."""


class _Armed:
    def __init__(self, action, skip: int, count: int | None):
        self.action = action
        self.skip = skip
        self.remaining = count
        self.hits = 0


_armed: dict[str, _Armed] = {}
_lock = threading.Lock()
_hits: dict[str, int] = {}


def arm(name: str, action: str | Callable[[], None] = "raise", *, skip: int = 0,
        count: int | None = None) -> None:
    with _lock:
        _armed[name] = _Armed(action, skip, count)


def disarm(name: str | None = None) -> None:
    with _lock:
        if name is None:
            _armed.clear()
        else:
            _armed.pop(name, None)


def hits(name: str) -> int:
    """How many times `name` was reached (armed or not), for tests that check coverage."""
    return _hits.get(name, 0)


def hit(name: str) -> None:
    _hits[name] = _hits.get(name, 0) + 1
    if not _armed:
        return
    with _lock:
        armed = _armed.get(name)
        if armed is None:
            return
        armed.hits += 1
        if armed.hits <= armed.skip:
            return
        if armed.remaining is not None:
            if armed.remaining <= 0:
                return
            armed.remaining -= 1
        action = armed.action
    if action == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise FailpointTriggered(name)
    elif callable(action):
        action()


def _arm_from_environment() -> None:
    for item in filter(None, os.environ.get(ENV_VAR, "").split(",")):
        name, _, action = item.partition("=")
        skip = 0
        if "@" in action:                  # name=crash@3: let 3 hits pass first
            action, _, skip_text = action.partition("@")
            skip = int(skip_text)
        arm(name.strip(), action.strip() or "crash", skip=skip)


_arm_from_environment()
