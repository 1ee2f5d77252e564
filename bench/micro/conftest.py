"""Shared data for the micro-benchmarks of the C calls (pytest-benchmark).

Run by `make bench` (the `micro` section) as
    pytest --benchmark-only bench/micro --benchmark-json=...
and never by `make test` (pyproject's testpaths is tests/). Every benchmark names its group and
its role: one `baseline` per group (the strongest simple alternative: a C extension from PyPI, a
Python stdlib call), the others `subject`; the report divides within a group.
"""

from __future__ import annotations

import random

import pytest

from logstore import record_batch

SEED = 1234


@pytest.fixture
def mark(benchmark):
    """mark(group, role): name the benchmark's group and its role in it."""
    def set_group(group: str, role: str) -> None:
        benchmark.group = group
        benchmark.extra_info["role"] = role
    return set_group


@pytest.fixture(scope="session")
def rng() -> random.Random:
    return random.Random(SEED)


@pytest.fixture(scope="session")
def values_100(rng) -> list[bytes]:
    return [rng.randbytes(100) for _ in range(1000)]


@pytest.fixture(scope="session")
def values_1k(rng) -> list[bytes]:
    return [rng.randbytes(1024) for _ in range(1000)]


@pytest.fixture(scope="session")
def segment_region(values_1k) -> bytes:
    """~64 MiB of valid batches (1000 × 1 KiB records each) with increasing offsets."""
    out = bytearray()
    base = 0
    while len(out) < 64 << 20:
        batch = record_batch.build_batch(values_1k, base_offset=base)
        out += batch
        base += len(values_1k)
    return bytes(out)
