"""A single background thread running periodic maintenance tasks (Kafka's KafkaScheduler).

Tasks: flush.ms flushes, retention, checkpoint writes. Each task is a callable run every
`period_ms`; an exception is logged and the task keeps its schedule (one bad partition must not
stop maintenance of the others). `time_ms` is injectable so tests can use a fake clock and call
`run_due()` themselves instead of starting the thread.

Thread-safety: schedule/cancel/shutdown may be called from any thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Callable

log = logging.getLogger("logstore.scheduler")
IDLE_WAIT_S = 1.0


def wall_ms() -> int:
    return int(time.time() * 1000)


class Scheduler:
    def __init__(self, name: str = "logstore-scheduler",
                 time_ms: Callable[[], int] = wall_ms, start: bool = True):
        self._time_ms = time_ms
        self._heap: list[tuple[int, int, str, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._cancelled: set[str] = set()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = None
        if start:
            self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
            self._thread.start()

    def schedule(self, name: str, task: Callable[[], None], period_ms: int,
                 delay_ms: int | None = None) -> None:
        """Run task every period_ms (first run after delay_ms, default one period)."""
        assert period_ms > 0
        due = self._time_ms() + (period_ms if delay_ms is None else delay_ms)
        with self._cond:
            self._cancelled.discard(name)
            heapq.heappush(self._heap, (due, next(self._counter), name, period_ms, task))
            self._cond.notify()

    def cancel(self, name: str) -> None:
        with self._cond:
            self._cancelled.add(name)

    def run_due(self) -> int:
        """Run every task whose time has come; returns how many ran."""
        ran = 0
        while True:
            with self._cond:
                if not self._heap or self._heap[0][0] > self._time_ms():
                    return ran
                due, _, name, period_ms, task = heapq.heappop(self._heap)
                if name in self._cancelled:
                    continue
                heapq.heappush(self._heap, (due + period_ms, next(self._counter), name,
                                            period_ms, task))
            try:
                task()
            except Exception:  # noqa: BLE001 - a maintenance task must not kill the thread
                log.exception("scheduled task %s failed", name)
            ran += 1

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                wait_s = IDLE_WAIT_S
                if self._heap:
                    wait_s = max(0.0, min(IDLE_WAIT_S, (self._heap[0][0] - self._time_ms()) / 1000))
                self._cond.wait(wait_s)
                if self._stopped:
                    return
            self.run_due()

    def shutdown(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
