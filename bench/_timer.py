"""The one timing helper of the benchmark suite: a subject and its baselines, interleaved.

Why interleaved: on this kind of machine (a VM, two cores, ext4 with page-cache writeback and
other processes) the speed of the same loop drifts by tens of percent over a minute. Timing the
subject for a minute and then the baseline for a minute measures the drift as much as the code.
So `compare` runs every case once per round, rotating which goes first (A B, B A, A B, ...), for
several rounds, and every figure it hands out is either a per-round rate or a *paired* ratio
(subject / baseline within the same round), summarised by the median and the spread over rounds.

Each round of a case is long enough to be meaningful: at least `min_iterations` iterations and
at least `min_wall_s` seconds. The iteration count is calibrated once per comparison (the
calibration run doubles as a warm-up). With `same_work=True` (the default, for anything that
writes files) every case runs the same number of iterations, so subject and baseline put the
same number of bytes through the page cache in every round; the count is the one the fastest
case needs to reach min_wall_s.

A case is three callables: `setup(n) -> state` (untimed; n is the iteration count, so a
consumer can be pre-filled), `run(state, n)` (timed: n iterations in a tight loop; may return a
list of per-operation latencies in ns), and `teardown(state)` (untimed). `units` says how much
work one iteration is ({"records": 1000, "bytes": 102400}).

Thread-safety: none needed; the suite is single-threaded apart from cases that start threads.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

CALIBRATION_ITERATIONS_MIN = 1
CALIBRATION_MARGIN = 1.15          # aim a bit above min_wall_s so noise does not undershoot
ITERATIONS_MAX = 1 << 30


@dataclass
class Settings:
    rounds: int = 5
    min_wall_s: float = 0.5
    min_iterations: int = 5
    settle: bool = True            # os.sync() before each timed run: start from a quiet device
    max_iterations: int = ITERATIONS_MAX


@dataclass
class Case:
    name: str
    run: Callable[[Any, int], Any]
    units: dict[str, float]
    setup: Callable[[int], Any] = lambda n: None
    teardown: Callable[[Any], None] = lambda state: None
    # A cap for cases whose setup cost grows with n (a queue to pre-fill): their rounds may then
    # be shorter than min_wall_s, and noisier.
    max_iterations: int | None = None


@dataclass
class CaseResult:
    name: str
    units: dict[str, float]
    iterations: int
    seconds: list[float] = field(default_factory=list)      # one per round
    cpu_seconds: list[float] = field(default_factory=list)  # user+sys of this process, per round
    latencies_ns: list[int] = field(default_factory=list)   # all rounds pooled, if recorded

    def rates(self, unit: str) -> list[float]:
        per = self.units[unit] * self.iterations
        return [per / s for s in self.seconds]

    def rate(self, unit: str) -> float:
        """Median over rounds of `unit` per second."""
        return statistics.median(self.rates(unit))

    def rate_spread(self, unit: str) -> tuple[float, float]:
        rates = self.rates(unit)
        return min(rates), max(rates)

    def cpu_rates(self, unit: str) -> list[float]:
        per = self.units[unit] * self.iterations
        return [per / s if s > 0 else math.inf for s in self.cpu_seconds]

    def seconds_per_iteration(self) -> float:
        return statistics.median(self.seconds) / self.iterations

    def percentile_ns(self, q: float) -> float:
        return percentile(self.latencies_ns, q)

    def to_json(self) -> dict:
        out = {"name": self.name, "units": self.units, "iterations": self.iterations,
               "seconds": self.seconds, "cpu_seconds": self.cpu_seconds}
        if self.latencies_ns:
            out["latency_ns"] = {f"p{q:g}": self.percentile_ns(q)
                                 for q in (50, 90, 99, 99.9, 100)}
            out["latency_samples"] = len(self.latencies_ns)
        return out


@dataclass
class Ratio:
    median: float
    low: float
    high: float
    per_round: list[float]

    def text(self) -> str:
        return f"{self.median:.2f}× ({self.low:.2f}–{self.high:.2f})"

    def to_json(self) -> dict:
        return {"median": self.median, "min": self.low, "max": self.high,
                "per_round": self.per_round}


@dataclass
class Comparison:
    cases: dict[str, CaseResult]
    settings: Settings

    def __getitem__(self, name: str) -> CaseResult:
        return self.cases[name]

    def ratio(self, subject: str, baseline: str, unit: str = "records") -> Ratio:
        """Subject rate / baseline rate, paired round by round."""
        a, b = self.cases[subject].rates(unit), self.cases[baseline].rates(unit)
        pairs = [x / y for x, y in zip(a, b)]
        return Ratio(statistics.median(pairs), min(pairs), max(pairs), pairs)

    def cpu_ratio(self, subject: str, baseline: str, unit: str = "records") -> Ratio:
        """The same ratio by CPU time (user+sys of this process): blind to other processes
        taking the CPU, but also to time spent waiting for the device."""
        a = self.cases[subject].cpu_rates(unit)
        b = self.cases[baseline].cpu_rates(unit)
        pairs = [x / y for x, y in zip(a, b)]
        return Ratio(statistics.median(pairs), min(pairs), max(pairs), pairs)

    def to_json(self) -> dict:
        return {"rounds": self.settings.rounds, "min_wall_s": self.settings.min_wall_s,
                "cases": {name: r.to_json() for name, r in self.cases.items()}}


def percentile(values: list[int] | list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a list; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def _timed(case: Case, n: int, settle: bool) -> tuple[float, float, list[int]]:
    """(wall seconds, CPU seconds, latencies) of one run of n iterations."""
    state = case.setup(n)
    try:
        if settle:
            os.sync()
        cpu = time.process_time()
        start = time.perf_counter()
        latencies = case.run(state, n)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
    finally:
        case.teardown(state)
    return elapsed, cpu, list(latencies) if latencies else []


def calibrate(case: Case, settings: Settings) -> int:
    """Iterations this case needs for one round of at least min_wall_s and min_iterations."""
    n = max(CALIBRATION_ITERATIONS_MIN, settings.min_iterations)
    cap = min(settings.max_iterations, case.max_iterations or ITERATIONS_MAX)
    n = min(n, cap)
    elapsed, _, _ = _timed(case, n, settle=False)
    if elapsed <= 0:
        return min(cap, n * 1000)
    wanted = math.ceil(n * settings.min_wall_s * CALIBRATION_MARGIN / elapsed)
    return min(cap, max(settings.min_iterations, wanted))


def compare(cases: list[Case], settings: Settings, *, same_work: bool = True,
            on_round: Callable[[int, int], None] | None = None) -> Comparison:
    """Run every case once per round, rotating the order, for settings.rounds rounds."""
    counts = {case.name: calibrate(case, settings) for case in cases}
    if same_work:
        top = max(counts.values())
        counts = {case.name: min(top, case.max_iterations or top) for case in cases}
    results = {case.name: CaseResult(case.name, dict(case.units), counts[case.name])
               for case in cases}
    for round_number in range(settings.rounds):
        shift = round_number % len(cases)
        for case in cases[shift:] + cases[:shift]:
            elapsed, cpu, latencies = _timed(case, counts[case.name], settings.settle)
            results[case.name].seconds.append(elapsed)
            results[case.name].cpu_seconds.append(cpu)
            results[case.name].latencies_ns.extend(latencies)
        if on_round:
            on_round(round_number + 1, settings.rounds)
    return Comparison(results, settings)
