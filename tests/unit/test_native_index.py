"""Offset, time and transaction index lookups and checks in the C core (csrc/offset_index.c,
time_index.c, txn_index.c), through logstore._ffi.

Goal: lookups give what a brute-force scan of the entries gives (largest entry <= target, smallest
upper bound by position), the warm-section search of Kafka's AbstractIndex is really used, sanity
checks point at the first bad entry, and aborted-transaction collection follows
TransactionIndex.collectAbortedTxns, stop flag and version quirk included.
Method: entries built with struct in Kafka's big-endian layouts; hypothesis-generated indexes
(large enough to have a cold and a warm section) against brute-force models.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstore import _ffi, errors

OFFSET_WARM = 8192 // 8   # entries in the warm section of a .index
TIME_WARM = 8192 // 12


def offset_index(entries) -> bytes:
    return b"".join(struct.pack(">ii", rel, pos) for rel, pos in entries)


def time_index(entries) -> bytes:
    return b"".join(struct.pack(">qi", ts, rel) for ts, rel in entries)


def aborted(pid, first, last, lso, version: int = 0) -> bytes:
    return struct.pack(">hqqqq", version, pid, first, last, lso)


def random_offset_entries(seed: int, n: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    rels = np.cumsum(rng.integers(1, 50, n))
    positions = np.cumsum(rng.integers(1, 5000, n))
    return list(zip(rels.tolist(), positions.tolist()))


# ------------------------------------------------------------------------------------------------
# Offset index


def brute_lookup(entries, base, target):
    found = [(base + rel, pos) for rel, pos in entries if base + rel <= target]
    return found[-1] if found else (base, 0)


def brute_upper_bound(entries, base, position):
    found = [base + rel for rel, pos in entries if pos >= position]
    return found[0] if found else None


def test_empty_offset_index():
    assert _ffi.offset_index_lookup(b"", 0, 500, 10**9) == (500, 0)
    assert _ffi.offset_index_upper_bound(b"", 0, 500, 0) is None
    assert _ffi.offset_index_check(b"", 0, 0) is None


def test_offset_lookup_small_index():
    entries = [(3, 100), (7, 4200), (12, 9000)]
    raw = offset_index(entries)
    base = 1000
    cases = {0: (1000, 0), 1002: (1000, 0), 1003: (1003, 100), 1006: (1003, 100),
             1007: (1007, 4200), 1011: (1007, 4200), 1012: (1012, 9000), 10**12: (1012, 9000)}
    for target, expected in cases.items():
        assert _ffi.offset_index_lookup(raw, 3, base, target) == expected, target


def test_upper_bound_small_index_includes_equal_positions():
    entries = [(3, 100), (7, 4200), (12, 9000)]
    raw = offset_index(entries)
    for position, expected in [(0, 1003), (100, 1003), (101, 1007), (4200, 1007),
                               (4201, 1012), (9000, 1012), (9001, None)]:
        assert _ffi.offset_index_upper_bound(raw, 3, 1000, position) == expected, position
    assert _ffi.offset_index_upper_bound(offset_index([(0, 50)]), 1, 0, 50) == 0


def test_entry_count_limits_what_is_read():
    raw = offset_index([(3, 100), (7, 4200), (12, 9000)]) + b"\xff" * 64  # preallocated tail
    assert _ffi.offset_index_lookup(raw, 2, 0, 100) == (7, 4200)
    assert _ffi.offset_index_upper_bound(raw, 2, 0, 5000) is None


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 3 * OFFSET_WARM), st.integers(0, 2**40),
       st.data())
def test_offset_lookups_equal_brute_force(seed, n, base, data):
    entries = random_offset_entries(seed, n)
    raw = offset_index(entries)
    last_rel = entries[-1][0] if entries else 0
    last_pos = entries[-1][1] if entries else 0
    targets = data.draw(st.lists(st.integers(base - 5, base + last_rel + 5), max_size=30))
    targets += [base + rel for rel, _ in entries[:: max(1, n // 10)]]
    for target in targets:
        assert _ffi.offset_index_lookup(raw, n, base, target) == brute_lookup(entries, base,
                                                                              target)
    positions = data.draw(st.lists(st.integers(0, last_pos + 5), max_size=30))
    positions += [pos for _, pos in entries[:: max(1, n // 10)]]
    for position in positions:
        assert _ffi.offset_index_upper_bound(raw, n, base, position) == brute_upper_bound(
            entries, base, position)


def test_lookup_searches_the_warm_section_first():
    """AbstractIndex: a target at or after the first warm entry is searched only among the last
    8192 bytes. Make the cold section garbage that a whole-index binary search would land in
    (its first midpoint is cold) and check the warm answer is still found."""
    n = 5 * OFFSET_WARM
    entries = random_offset_entries(1, n)
    first_hot = n - 1 - OFFSET_WARM
    poisoned = [(2**31 - 1, 2**31 - 1)] * first_hot + entries[first_hot:]
    raw = offset_index(poisoned)
    for slot in (first_hot + 1, first_hot + 10, first_hot + OFFSET_WARM // 2, n - 1):
        rel, pos = entries[slot]
        assert _ffi.offset_index_lookup(raw, n, 0, rel) == (rel, pos)
        assert _ffi.offset_index_lookup(raw, n, 0, rel + 1) == brute_lookup(entries, 0, rel + 1)
        assert _ffi.offset_index_upper_bound(raw, n, 0, pos) == rel


def test_lookup_on_garbage_entries_stays_in_bounds():
    rng = np.random.default_rng(5)
    raw = rng.integers(0, 256, 8 * 3000, dtype=np.uint8).tobytes()
    for target in (-(2**63), 0, 2**40, 2**63 - 1):
        offset, position = _ffi.offset_index_lookup(raw, 3000, 0, target)
        assert offset == 0 and position == 0 or (offset, position) in {
            struct.unpack_from(">ii", raw, 8 * i) for i in range(3000)}


def test_offset_index_check_finds_the_first_bad_entry():
    good = [(0, 0), (5, 100), (9, 4000)]
    assert _ffi.offset_index_check(offset_index(good), 3, 4001) is None
    cases = {
        "negative relative offset": ([(-1, 0), (5, 100)], 0),
        "offset not increasing": ([(0, 0), (5, 100), (5, 200)], 2),
        "offset going back": ([(0, 0), (5, 100), (4, 200)], 2),
        "position not increasing": ([(0, 0), (5, 100), (9, 100)], 2),
        "negative position": ([(0, -4)], 0),
        "position at log end": ([(0, 0), (5, 4001)], 1),
    }
    for name, (entries, bad) in cases.items():
        assert _ffi.offset_index_check(offset_index(entries), len(entries), 4001) == bad, name


def test_index_argument_errors():
    with pytest.raises(errors.LogstoreError, match="invalid argument"):
        _ffi.offset_index_lookup(offset_index([(0, 0)]), 1, -1, 0)
    with pytest.raises(errors.LogstoreError, match="invalid argument"):
        _ffi.offset_index_check(offset_index([(0, 0)]), 1, -1)


# ------------------------------------------------------------------------------------------------
# Time index


def brute_time_lookup(entries, base, target):
    found = [(ts, base + rel) for ts, rel in entries if ts <= target]
    return found[-1] if found else (-1, base)


def test_empty_time_index():
    assert _ffi.time_index_lookup(b"", 0, 70, 10**15) == (-1, 70)
    assert _ffi.time_index_check(b"", 0) is None


def test_time_lookup_small_index():
    raw = time_index([(1000, 3), (1500, 9), (1500, 11), (2000, 20)])
    assert _ffi.time_index_lookup(raw, 4, 100, 999) == (-1, 100)
    assert _ffi.time_index_lookup(raw, 4, 100, 1000) == (1000, 103)
    assert _ffi.time_index_lookup(raw, 4, 100, 1499) == (1000, 103)
    assert _ffi.time_index_lookup(raw, 4, 100, 1999)[0] == 1500
    assert _ffi.time_index_lookup(raw, 4, 100, 2**62) == (2000, 120)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 3 * TIME_WARM), st.data())
def test_time_lookups_equal_brute_force(seed, n, data):
    rng = np.random.default_rng(seed)
    stamps = (1_700_000_000_000 + np.cumsum(rng.integers(1, 1000, n))).tolist()
    rels = np.cumsum(rng.integers(1, 20, n)).tolist()
    entries = list(zip(stamps, rels))
    raw = time_index(entries)
    high = stamps[-1] + 5 if entries else 1_700_000_000_100
    targets = data.draw(st.lists(st.integers(1_700_000_000_000 - 5, high), max_size=30))
    targets += stamps[:: max(1, n // 10)]
    for target in targets:
        assert _ffi.time_index_lookup(raw, n, 500, target) == brute_time_lookup(entries, 500,
                                                                                target)


def test_time_index_check_finds_the_first_bad_entry():
    assert _ffi.time_index_check(time_index([(5, 0), (5, 2), (9, 3)]), 3) is None
    cases = {
        "timestamp going back": ([(5, 0), (9, 2), (8, 3)], 2),
        "offset not increasing": ([(5, 0), (9, 2), (10, 2)], 2),
        "negative relative offset": ([(5, -1)], 0),
    }
    for name, (entries, bad) in cases.items():
        assert _ffi.time_index_check(time_index(entries), len(entries)) == bad, name


# ------------------------------------------------------------------------------------------------
# Transaction index


def collect_model(entries, fetch_offset, upper_offset):
    """TransactionIndex.collectAbortedTxns."""
    found = []
    for pid, first, last, lso in entries:
        if last >= fetch_offset and first < upper_offset:
            found.append((pid, first))
        if lso >= upper_offset:
            return found, True
    return found, False


def test_collect_matches_kafka_semantics():
    entries = [(1, 0, 10, 11), (2, 5, 20, 21), (3, 30, 40, 25), (4, 50, 60, 61)]
    raw = b"".join(aborted(*e) for e in entries)
    assert _ffi.txn_index_collect(raw, 0, 100) == ([(1, 0), (2, 5), (3, 30), (4, 50)], False)
    assert _ffi.txn_index_collect(raw, 11, 100) == ([(2, 5), (3, 30), (4, 50)], False)
    assert _ffi.txn_index_collect(raw, 0, 6) == ([(1, 0)], True)   # lso 11 >= 6: stop there
    assert _ffi.txn_index_collect(raw, 0, 12) == ([(1, 0), (2, 5)], True)
    assert _ffi.txn_index_collect(raw, 21, 31) == ([(3, 30)], True)    # entry 4: lso 61 >= 31
    assert _ffi.txn_index_collect(raw, 61, 1000) == ([], False)
    assert _ffi.txn_index_collect(b"", 0, 10) == ([], False)


def test_collect_stops_at_the_entry_whose_lso_reaches_upper_and_includes_it():
    raw = aborted(1, 0, 10, 50) + aborted(2, 12, 14, 15) + aborted(9, 1, 99, 100, version=0x100)
    assert _ffi.txn_index_collect(raw, 0, 50) == ([(1, 0)], True)
    # The bad version after the stop point is never read, as Kafka's iterator would not.
    with pytest.raises(errors.CorruptIndex):
        _ffi.txn_index_collect(raw, 0, 51)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40), st.integers(0, 10),
                          st.integers(0, 60)), max_size=40),
       st.integers(0, 400), st.integers(0, 400))
def test_collect_equals_model(raw_entries, fetch_offset, upper_offset):
    entries, last = [], 0
    for pid, gap, span, lso_gap in raw_entries:
        last += gap + 1
        entries.append((pid, max(0, last - span), last, last + lso_gap))
    raw = b"".join(aborted(*e) for e in entries)
    assert _ffi.txn_index_collect(raw, fetch_offset, upper_offset) == collect_model(
        entries, fetch_offset, upper_offset)


def test_collect_grows_past_the_first_capacity():
    n = _ffi.TXN_COLLECT_CAP + 500
    raw = b"".join(aborted(i, 2 * i, 2 * i + 1, 2 * i + 2) for i in range(n))
    found, stop = _ffi.txn_index_collect(raw, 0, 2 * n + 10)
    assert found == [(i, 2 * i) for i in range(n)] and not stop


def test_version_byte_quirk():
    """Kafka's AbortedTxn.version() reads the first byte of the int16."""
    low_byte_set = bytearray(aborted(1, 0, 10, 11))
    low_byte_set[1] = 0x01            # int16 version 1, but byte 0 is still 0: accepted
    assert _ffi.txn_index_collect(bytes(low_byte_set), 0, 100) == ([(1, 0)], False)
    assert _ffi.txn_index_check(bytes(low_byte_set), 0) is None
    for first_byte in (0x01, 0x80, 0xFF):
        bad = bytearray(aborted(1, 0, 10, 11))
        bad[0] = first_byte
        with pytest.raises(errors.CorruptIndex):
            _ffi.txn_index_collect(bytes(bad), 0, 100)
        assert _ffi.txn_index_check(bytes(bad), 0) == 0


def test_collect_ignores_a_torn_last_entry_and_check_reports_it():
    raw = aborted(1, 0, 10, 11) + aborted(2, 12, 20, 21)[:20]
    assert _ffi.txn_index_collect(raw, 0, 100) == ([(1, 0)], False)
    assert _ffi.txn_index_check(raw, 0) == 1


def test_txn_index_check_finds_the_first_bad_entry():
    good = aborted(1, 100, 110, 111) + aborted(2, 105, 120, 121)
    assert _ffi.txn_index_check(good, 100) is None
    assert _ffi.txn_index_check(good, 111) == 0                      # lastOffset below base
    assert _ffi.txn_index_check(good + aborted(3, 0, 120, 130), 0) == 2  # not increasing
    assert _ffi.txn_index_check(good + aborted(3, 200, 150, 151), 0) == 2  # first > last


# ------------------------------------------------------------------------------------------------
# The boundary between Python's buffers and the C lookups


def test_a_count_larger_than_the_buffer_is_refused_before_c_reads():
    raw = offset_index([(1, 10), (2, 20)])
    with pytest.raises(ValueError, match="does not hold 3 entries"):
        _ffi.offset_index_lookup(raw, 3, 0, 5)
    with pytest.raises(ValueError, match="does not hold 3 entries"):
        _ffi.offset_index_check(raw, 3, 100)
    times = time_index([(100, 1)])
    with pytest.raises(ValueError, match="of 12 bytes"):
        _ffi.time_index_lookup(times, 2, 0, 100)
    with pytest.raises(ValueError):
        _ffi.time_index_check(times + b"\0" * 8, 2)       # 20 bytes: not two 12-byte entries


def test_a_lookup_during_a_remap_reads_only_the_bytes_it_holds(tmp_path):
    """An owner that remaps (make_writable, trim) has no bytes mapped for a moment while its entry
    count stays; a lookup on another thread then sees a consistent empty snapshot and answers
    the index's lower bound (a longer scan, still correct), never entries past its buffer."""
    from logstore.offset_index import OffsetIndex
    from logstore.time_index import TimeIndex

    index = OffsetIndex(str(tmp_path / "0.index"), 100, 4096, writable=True)
    times = TimeIndex(str(tmp_path / "0.timeindex"), 100, 4096, writable=True)
    for i in range(1, 6):
        index.append(100 + 10 * i, 1000 * i)
        times.maybe_append(5000 + i, 100 + 10 * i)
    assert index.lookup(135) == (130, 3000)
    held, count = index.snapshot()
    index._unmap()                          # the middle of a remap: nothing mapped, count kept
    times._unmap()
    assert index.entry_count == 5 and times.entry_count == 5
    assert index.lookup(135) == (100, 0)
    assert index.upper_bound_offset(2500) is None
    assert times.lookup(5003) == (-1, 100)
    assert count == 5 and _ffi.offset_index_lookup(held, count, 100, 135) == (130, 3000)
