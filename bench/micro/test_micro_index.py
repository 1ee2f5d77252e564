"""Offset index lookup (largest entry <= target) in C over a 1M-entry big-endian index, the
form the mmap holds, against bisect over a Python list of the same offsets."""

from __future__ import annotations

import bisect
import itertools

import numpy as np
import pytest

from logstore import _ffi
from logstore.offset_index import OffsetIndex


ENTRIES = 1 << 20
GROUP = "offset index lookup, 1M entries"


@pytest.fixture(scope="module")
def index(rng):
    relative = np.arange(ENTRIES, dtype=np.int64) * 37
    entries = np.empty(ENTRIES, dtype=OffsetIndex.DTYPE)
    entries["relative_offset"] = relative
    entries["position"] = np.arange(ENTRIES, dtype=np.int64) * 4096
    raw = entries.view(np.uint8)
    targets = [rng.randrange(ENTRIES * 37) for _ in range(4096)]
    return raw, relative.tolist(), targets


def test_lookup_c(benchmark, mark, index):
    raw, offsets, targets = index
    mark(GROUP, "subject")
    it = itertools.cycle(targets)
    lookup = _ffi.offset_index_lookup
    benchmark(lambda: lookup(raw, ENTRIES, 0, next(it)))
    t = targets[0]
    assert lookup(raw, ENTRIES, 0, t)[0] == offsets[bisect.bisect_right(offsets, t) - 1]


def test_lookup_baseline_bisect(benchmark, mark, index):
    raw, offsets, targets = index
    mark(GROUP, "baseline")
    it = itertools.cycle(targets)
    search = bisect.bisect_right
    benchmark(lambda: offsets[search(offsets, next(it)) - 1])
