"""A progress bar on stderr: one self-overwriting line on a terminal, sparse plain lines otherwise.

The whole run is a list of sections with weights (their expected share of the wall time); a
section reports its own fraction done, and the bar shows the weighted total, the section, what
it is doing and the elapsed time.
"""

from __future__ import annotations

import sys
import time

BAR_WIDTH = 28
PLAIN_INTERVAL_S = 5.0          # without a terminal: at most one line per this many seconds


class Progress:
    def __init__(self, weights: dict[str, float], stream=sys.stderr):
        self.weights = weights
        self.total = sum(weights.values()) or 1.0
        self.stream = stream
        self.tty = _isatty(stream)
        self.start = time.monotonic()
        self.done_weight = 0.0
        self.section = ""
        self.fraction = 0.0
        self.last_plain = 0.0
        self.width = 0

    def begin(self, section: str) -> None:
        self.section = section
        self.fraction = 0.0
        self.update(0.0, "starting", force=True)

    def end(self, section: str) -> None:
        self.done_weight += self.weights.get(section, 0.0)
        self.fraction = 0.0
        self.update(0.0, "done", force=True)

    def update(self, fraction: float, label: str = "", force: bool = False) -> None:
        self.fraction = min(1.0, max(self.fraction, fraction))
        overall = (self.done_weight + self.fraction * self.weights.get(self.section, 0.0))
        overall = min(1.0, overall / self.total)
        elapsed = time.monotonic() - self.start
        filled = int(overall * BAR_WIDTH)
        text = (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {overall * 100:3.0f}% "
                f"{_clock(elapsed)}  {self.section}: {label}")
        if self.tty:
            pad = max(0, self.width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self.width = len(text)
            self.stream.flush()
        elif force or elapsed - self.last_plain >= PLAIN_INTERVAL_S:
            self.stream.write(text + "\n")
            self.stream.flush()
            self.last_plain = elapsed

    def note(self, message: str) -> None:
        """A line of its own above the bar."""
        if self.tty:
            self.stream.write("\r" + " " * self.width + "\r")
            self.width = 0
        self.stream.write(message + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()


class Steps:
    """A section's own progress: `steps` named steps, each with optional sub-fractions."""

    def __init__(self, progress: Progress | None, steps: int):
        self.progress = progress
        self.steps = max(1, steps)
        self.done = 0

    def sub(self, label: str):
        """A callback (done, total) for one step, e.g. a comparison's rounds."""
        def report(done: int, total: int) -> None:
            if self.progress:
                self.progress.update((self.done + done / max(1, total)) / self.steps,
                                     f"{label} ({done}/{total})")
        return report

    def step(self, label: str) -> None:
        """Start the next step."""
        if self.progress:
            self.progress.update(self.done / self.steps, label)

    def finish(self, label: str = "") -> None:
        self.done += 1
        if self.progress:
            self.progress.update(self.done / self.steps, label)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
