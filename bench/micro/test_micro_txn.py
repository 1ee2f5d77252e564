"""Aborted-transaction collection for a read_committed fetch (C over the .txnindex bytes)
against the same filter in Python with struct.iter_unpack."""

from __future__ import annotations

import struct

import pytest

from logstore import _ffi
from logstore.txn_index import ENTRY, AbortedTxn


ENTRIES = 10_000
GROUP = "txn index collect, 10k entries"


@pytest.fixture(scope="module")
def region():
    out = bytearray()
    for i in range(ENTRIES):
        first = i * 100
        out += AbortedTxn(i % 97, first, first + 50, first + 40).encode()
    return bytes(out)


FETCH, UPPER = 400_000, 600_000       # the middle fifth of the index matches


def test_collect_c(benchmark, mark, region):
    mark(GROUP, "subject")
    found, _stop = benchmark(_ffi.txn_index_collect, region, FETCH, UPPER)
    assert len(found) == len(_python_collect(region))


def _python_collect(region):
    return [(pid, first) for _v, pid, first, last, _lso in ENTRY.iter_unpack(region)
            if last >= FETCH and first < UPPER]


def test_collect_baseline_python(benchmark, mark, region):
    mark(GROUP, "baseline")
    benchmark(_python_collect, region)


assert struct.calcsize(">hqqqq") == 34
