"""`DataNotifier`: the Broker's data condition, seen from the event loop (Fetch long polling).

The Broker bumps `data_version` and notifies `data_cond` after every append and marker. A Fetch
that has fewer than min_bytes must wait for that without blocking the loop: one daemon thread
waits on the condition (`broker.wait_for_data`) and, when the version moves, schedules one wake
on the loop (coalesced: at most one pending), which bumps the loop-side `version` and sets the
current asyncio.Event (replaced by a fresh one for the next round).

Usage (no lost wake-ups): read `seen = notifier.version` *before* reading the partitions, then
`await notifier.wait(seen, timeout)`; it returns at once if a wake happened since.

Thread-safety: `version`, `wait` and the events belong to the loop thread; the bridge thread
only calls `loop.call_soon_threadsafe`. `close()` wakes the thread and joins it.
"""

from __future__ import annotations

import asyncio
import threading

POLL_S = 0.25                  # the bridge re-checks for close at least this often


class DataNotifier:
    def __init__(self, broker, loop: asyncio.AbstractEventLoop):
        self._broker = broker
        self._loop = loop
        self.version = 0
        self._event = asyncio.Event()
        self._wake_pending = False
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._bridge, name="wire-data-notifier",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _bridge(self) -> None:
        seen = self._broker.data_version
        while not self._closed.is_set():
            current = self._broker.wait_for_data(seen, POLL_S)
            if current == seen:
                continue
            seen = current
            if not self._wake_pending:
                self._wake_pending = True
                try:
                    self._loop.call_soon_threadsafe(self._wake)
                except RuntimeError:          # the loop is closed: we are shutting down
                    return

    def _wake(self) -> None:
        self._wake_pending = False
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, seen_version: int, timeout_s: float) -> None:
        """Return when a wake happened after `seen_version` was read, or after timeout_s."""
        if self.version != seen_version or timeout_s <= 0:
            return
        try:
            await asyncio.wait_for(self._event.wait(), timeout_s)
        except asyncio.TimeoutError:
            pass

    def close(self) -> None:
        self._closed.set()
        with self._broker.data_cond:               # wake the bridge without a new version
            self._broker.data_cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(POLL_S * 4)
