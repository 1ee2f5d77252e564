"""The section registry and what a section gets to work with.

A section is a function `run(ctx) -> SectionResult` in a module of `bench/sections/`, registered
with `@section(name, title, order, weight)`. `bench/run.py` imports every module of that package,
so a later issue adds a section (transactions, the wire server) by adding one file; `--sections`
picks some by name, and `order` fixes their place in the run and in the report.

`Context` holds the run-wide choices: quick or full mode, the timer settings of that mode, the
section's own data directory (on the repository's file system, deleted after the section), the
output directory for plots, the shared record sets and the progress bar.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Callable

from bench._progress import Progress, Steps
from bench._report import SectionResult
from bench._timer import Settings

RECORD_SIZES = (100, 1024)
RECORDS_PER_BATCH = 1000
POOL_BATCHES = 4              # distinct batches cycled through, so no loop re-sends one hot list
RECORD_SEED = 20240611


@dataclass(frozen=True)
class Spec:
    name: str
    title: str
    order: int
    weight_quick: float         # expected seconds, for the progress bar
    weight_full: float
    run: Callable


SECTIONS: dict[str, Spec] = {}


def section(name: str, title: str, order: int, weight_quick: float = 5.0,
            weight_full: float = 60.0):
    def register(fn):
        if name in SECTIONS:
            raise ValueError(f"benchmark section {name!r} registered twice")
        SECTIONS[name] = Spec(name, title, order, weight_quick, weight_full, fn)
        return fn
    return register


class Records:
    """The records every section writes: POOL_BATCHES batches of RECORDS_PER_BATCH random
    (incompressible) values per size, generated once per run from a fixed seed."""

    def __init__(self):
        rng = random.Random(RECORD_SEED)
        self.pools = {size: [[rng.randbytes(size) for _ in range(RECORDS_PER_BATCH)]
                             for _ in range(POOL_BATCHES)] for size in RECORD_SIZES}
        self.joined = {size: [b"".join(batch) for batch in pool]
                       for size, pool in self.pools.items()}

    def batch(self, size: int, i: int) -> list[bytes]:
        return self.pools[size][i % POOL_BATCHES]

    def singles(self, size: int) -> list[bytes]:
        """Single records (for per-message puts), cycled by index."""
        return self.pools[size][0]


@dataclass
class Context:
    quick: bool
    settings: Settings
    data_dir: str
    out_dir: str
    records: Records
    progress: Progress | None = None
    profile_misses: bool = True
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    _counter: int = 0

    def at_end(self, fn: Callable[[], None]) -> None:
        """Run fn after the section, once its MISSes are profiled (the profiled cases may need
        the logs and files the section built)."""
        self.cleanups.append(fn)

    def path(self, name: str) -> str:
        """A fresh, not yet existing path under the section's data directory."""
        self._counter += 1
        return os.path.join(self.data_dir, f"{self._counter:04d}-{name}")

    def steps(self, count: int) -> Steps:
        return Steps(self.progress, count)

    def settings_with(self, **changes) -> Settings:
        values = dict(self.settings.__dict__)
        values.update(changes)
        return Settings(**values)

    def pick(self, quick, full):
        return quick if self.quick else full


def new_result(name: str) -> SectionResult:
    spec = SECTIONS[name]
    return SectionResult(name=spec.name, title=spec.title)
