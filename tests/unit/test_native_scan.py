"""Segment scans in the C core (csrc/segment.c), through logstore._ffi.

Goal: ls_segment_scan rebuilds exactly the .index/.timeindex entries Kafka's LogSegment.recover
writes, stops at the first invalid batch (the valid prefix is what recovery keeps), resumes
correctly after its output arrays fill, and the header-only walks (find_offset, find_timestamp,
read_extent) answer as Kafka's FileRecords searches and KIP-74 fetches do.
Method: a small pure-Python model of Kafka's recover loop (below) as the reference on fixed and
hypothesis-generated segments; truncation at every byte, bit flips, garbage tails and offset
violations; resumable scans with one-entry arrays compared with a one-shot scan.
"""

from __future__ import annotations

import struct

import crc32c
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstore import _ffi, errors

TS = 1_700_000_000_000
INT32_MAX = 2**31 - 1

ERR = {name: getattr(_ffi.lib, f"LS_ERR_{name}") for name in (
    "TRUNCATED", "CORRUPT_BATCH", "CRC_MISMATCH", "UNSUPPORTED_MAGIC", "INVALID_RECORD",
    "OFFSET_OVERFLOW", "NON_MONOTONIC")}


# ------------------------------------------------------------------------------------------------
# Building segments


def make_batch(base_offset: int, count: int = 1, value_size: int = 10, ts: int = TS,
               ts_step: int = 1, pid: int = -1, epoch: int = -1, seq: int = -1,
               attributes: int = 0, leader_epoch: int = 0) -> bytes:
    timestamps = np.array([ts + i * ts_step for i in range(count)], np.int64)
    values = b"x" * (value_size * count)
    bound = _ffi.records_size_bound(count, 0, len(values), 0)
    out = bytearray(_ffi.BATCH_OVERHEAD + bound)
    header = _ffi.new_header(base_offset=base_offset, producer_id=pid, producer_epoch=epoch,
                             base_sequence=seq, attributes=attributes,
                             partition_leader_epoch=leader_epoch)
    n = _ffi.build_batch(out, header, count, timestamps, None, None, values,
                         np.full(count, value_size, np.int32))
    return bytes(out[:n])


def make_marker(offset: int, pid: int, commit: bool, coordinator_epoch: int = 7,
                key: bytes | None = None, value: bytes | None = None) -> bytes:
    key = key if key is not None else struct.pack(">hh", 0, 1 if commit else 0)
    value = value if value is not None else struct.pack(">hi", 0, coordinator_epoch)
    out = bytearray(200)
    header = _ffi.new_header(base_offset=offset, producer_id=pid, producer_epoch=2,
                             attributes=0x30, base_timestamp=TS)
    n = _ffi.build_batch(out, header, 1, np.array([TS], np.int64), key,
                         np.array([len(key)], np.int32), value, np.array([len(value)], np.int32))
    return bytes(out[:n])


def segment_of(specs, base_offset: int = 0) -> bytes:
    """Batches back to back; specs are (count, value_size, max_ts or None) per batch."""
    out = bytearray()
    offset = base_offset
    for count, value_size, ts in specs:
        out += make_batch(offset, count, value_size, ts=TS if ts is None else ts, ts_step=0)
        offset += count
    return bytes(out)


# ------------------------------------------------------------------------------------------------
# Kafka's LogSegment.recover as a model (KAFKA_FACTS.md 3.3, 3.4, 3.7)


def kafka_recover(log: bytes, base_offset: int, interval: int) -> dict:
    valid = last_index_entry = 0
    max_ts, offset_of_max, last_time_ts, next_offset = -1, -1, -1, None
    index, time_index = [], []
    batches = 0
    while len(log) - valid >= 17:
        length = int.from_bytes(log[valid + 8:valid + 12], "big", signed=True)
        size = length + 12
        if length < 49 or size > len(log) - valid or log[valid + 16] != 2:
            break
        batch = log[valid:valid + size]
        (base, _, _, _, crc, _, delta, _, batch_max_ts, _, _, _, _) = struct.unpack(
            ">qiibIhiqqqhii", batch[:61])
        if crc32c.crc32c(batch[21:]) != crc:
            break
        last = base + delta
        if next_offset is not None and base < next_offset:
            break
        if base < base_offset or last - base_offset > INT32_MAX:
            break
        if batch_max_ts > max_ts:
            max_ts, offset_of_max = batch_max_ts, last
        if valid - last_index_entry > interval:
            index.append((last - base_offset, valid))
            if max_ts > last_time_ts:
                time_index.append((max_ts, offset_of_max - base_offset))
                last_time_ts = max_ts
            last_index_entry = valid
        valid += size
        next_offset = last + 1
        batches += 1
    return dict(position=valid, index=index, time_index=time_index, max_timestamp=max_ts,
                offset_of_max_timestamp=offset_of_max, batches=batches,
                next_offset=-1 if next_offset is None else next_offset,
                bytes_since_index_entry=valid - last_index_entry)


# ------------------------------------------------------------------------------------------------
# Driving the scan


def unpack_index(raw: bytes, n: int) -> list[tuple[int, int]]:
    return [struct.unpack_from(">ii", raw, 8 * i) for i in range(n)]


def unpack_time_index(raw: bytes, n: int) -> list[tuple[int, int]]:
    return [struct.unpack_from(">qi", raw, 12 * i) for i in range(n)]


def scan(log: bytes, base_offset: int = 0, interval: int = 4096, cap: int | None = None,
         verify_crc: bool = True, producer_only: bool = False, calls_max: int = 100_000):
    """Scan to the end with arrays of `cap` entries (None: big enough for one call).
    Returns (state, index entries, time entries, infos, calls)."""
    cap = cap if cap is not None else len(log) // 61 + 1
    index_raw, time_raw = bytearray(8 * cap), bytearray(12 * cap)
    infos = _ffi.new_batch_infos(cap)
    state = _ffi.new_scan_state(0)
    index, time_index, found = [], [], []
    for calls in range(1, calls_max + 1):
        rc = _ffi.scan_segment(log, base_offset, interval, state, verify_crc=verify_crc,
                               index_out=index_raw, time_index_out=time_raw, infos=infos,
                               infos_cap=cap, producer_batches_only=producer_only)
        index += unpack_index(index_raw, state.index_entries)
        time_index += unpack_time_index(time_raw, state.time_index_entries)
        found += _ffi.batch_infos(infos, state.infos)
        if rc != _ffi.SCAN_OUTPUT_FULL:
            assert rc == _ffi.SCAN_END
            return state, index, time_index, found, calls
    raise AssertionError("scan did not finish")


def assert_matches_model(log: bytes, base_offset: int, interval: int, cap=None) -> None:
    model = kafka_recover(log, base_offset, interval)
    state, index, time_index, _, _ = scan(log, base_offset, interval, cap)
    assert index == model["index"]
    assert time_index == model["time_index"]
    for field in ("position", "max_timestamp", "offset_of_max_timestamp", "batches",
                  "next_offset", "bytes_since_index_entry"):
        assert getattr(state, field) == model[field], field
    assert state.last_index_offset == (base_offset + index[-1][0] if index else -1)
    assert state.last_time_index_timestamp == (time_index[-1][0] if time_index else -1)
    assert (state.error == 0) == (state.position == len(log))


# ------------------------------------------------------------------------------------------------
# Index rebuild


def test_index_entries_match_kafka_rule_on_mixed_segment():
    specs = [(1, 1000, TS), (3, 2000, TS + 5), (1, 10, TS + 2), (2, 3000, TS + 9), (1, 5000, -1),
             (5, 800, TS + 9), (1, 4100, TS + 20), (1, 1, TS + 30), (4, 1500, TS + 25)] * 3
    log = segment_of(specs, base_offset=1000)
    for interval in (0, 1, 100, 4096, 10_000, 10**9):
        assert_matches_model(log, 1000, interval)


def test_first_batch_never_gets_an_entry_and_entry_is_last_offset_at_batch_start():
    b1, b2, b3 = make_batch(50, count=3), make_batch(53, count=2), make_batch(55, count=4)
    state, index, time_index, _, _ = scan(b1 + b2 + b3, base_offset=50, interval=0)
    # Entry = (lastOffset of the batch - base, position of its first byte).
    assert index == [(54 - 50, len(b1)), (58 - 50, len(b1) + len(b2))]
    # Time entries carry the max so far: b1's TS + 2 (offset 52) when b2 is indexed, then b3's
    # TS + 3 (offset 58); b2's own max (TS + 1) never shows.
    assert time_index == [(TS + 2, 2), (TS + 3, 8)]
    _, _, time2, _, _ = scan(b1 + b2 + make_batch(55, ts=TS + 100), 50, interval=0)
    assert time2 == [(TS + 2, 2), (TS + 100, 5)]
    assert state.bytes_since_index_entry == len(b3) and state.last_index_offset == 58


def test_time_entry_only_when_max_timestamp_grew():
    log = segment_of([(1, 10, TS + 10), (1, 10, TS + 10), (1, 10, TS + 5), (1, 10, TS + 11)])
    _, index, time_index, _, _ = scan(log, interval=0)
    assert [o for o, _ in index] == [1, 2, 3]
    assert time_index == [(TS + 10, 0), (TS + 11, 3)]


def test_no_timestamps_give_no_time_entries():
    log = segment_of([(1, 10, -1)] * 4)
    state, index, time_index, _, _ = scan(log, interval=0)
    assert len(index) == 3 and time_index == []
    assert (state.max_timestamp, state.offset_of_max_timestamp) == (-1, -1)


def test_empty_region_ends_at_once():
    state, index, _, _, _ = scan(b"")
    assert (state.position, state.error, state.batches, state.next_offset) == (0, 0, 0, -1)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 2500),
                          st.one_of(st.none(), st.integers(-1, 50).map(lambda d: TS + d))),
                min_size=1, max_size=25),
       st.sampled_from([0, 1, 500, 4096, 20_000]), st.integers(0, 2**40))
def test_scan_equals_kafka_model(specs, interval, base_offset):
    log = segment_of(specs, base_offset)
    assert_matches_model(log, base_offset, interval)


# ------------------------------------------------------------------------------------------------
# Resuming after OUTPUT_FULL


@pytest.mark.parametrize("cap", [1, 2, 3])
def test_resumable_scan_with_tiny_arrays_equals_one_shot(cap):
    log = segment_of([(2, 700, TS + (i * 7) % 13) for i in range(60)], base_offset=10)
    one_state, one_index, one_time, one_infos, calls1 = scan(log, 10, interval=500)
    state, index, time_index, infos, calls = scan(log, 10, interval=500, cap=cap)
    assert calls1 == 1 and calls > 1
    assert (index, time_index, infos) == (one_index, one_time, one_infos)
    assert len(infos) == 60
    for field in ("position", "next_offset", "max_timestamp", "offset_of_max_timestamp",
                  "bytes_since_index_entry", "last_index_offset", "last_time_index_timestamp",
                  "batches"):
        assert getattr(state, field) == getattr(one_state, field), field


def test_output_full_leaves_the_batch_unconsumed():
    b = [make_batch(i) for i in range(3)]
    log = b"".join(b)
    state = _ffi.new_scan_state(0)
    infos = _ffi.new_batch_infos(1)
    rc = _ffi.scan_segment(log, 0, 0, state, index_out=bytearray(8), infos=infos, infos_cap=1)
    assert rc == _ffi.SCAN_OUTPUT_FULL
    assert (state.position, state.batches, state.infos, state.index_entries) == (len(b[0]), 1, 1,
                                                                                0)
    # Resume: batch 1 needs an index entry (fits) and an info (fits), batch 2 again overflows.
    rc = _ffi.scan_segment(log, 0, 0, state, index_out=bytearray(8), infos=infos, infos_cap=1)
    assert rc == _ffi.SCAN_OUTPUT_FULL
    assert (state.position, state.index_entries, _ffi.batch_infos(infos, 1)[0].base_offset) == (
        len(b[0]) + len(b[1]), 1, 1)


def test_full_index_buffer_stops_instead_of_dropping_entries():
    log = segment_of([(1, 10, TS)] * 3)
    state = _ffi.new_scan_state(0)
    rc = _ffi.scan_segment(log, 0, 0, state, index_out=bytearray(0))  # an index with no room
    assert rc == _ffi.SCAN_OUTPUT_FULL and state.batches == 1
    state = _ffi.new_scan_state(0)  # None: not wanted, the scan runs through
    assert _ffi.scan_segment(log, 0, 0, state) == _ffi.SCAN_END
    assert (state.batches, state.last_index_offset, state.index_entries) == (3, 2, 0)


def test_scan_rejects_bad_arguments_and_tampered_state():
    log = make_batch(0)
    with pytest.raises(errors.LogstoreError, match="invalid argument"):
        _ffi.scan_segment(log, 0, -1, _ffi.new_scan_state(0))
    with pytest.raises(errors.LogstoreError, match="invalid argument"):
        _ffi.scan_segment(log, -5, 0, _ffi.new_scan_state(0))
    state = _ffi.new_scan_state(len(log) + 1)
    with pytest.raises(errors.LogstoreError, match="invalid argument"):
        _ffi.scan_segment(log, 0, 0, state)
    state = _ffi.new_scan_state(0)
    state.max_timestamp = TS  # without the offset that holds it
    with pytest.raises(errors.LogstoreError, match="invalid argument"):
        _ffi.scan_segment(log, 0, 0, state)
    with pytest.raises(errors.LogstoreError):
        _ffi.new_scan_state(-1)


# ------------------------------------------------------------------------------------------------
# Stopping at the first invalid batch


def scan_stop(log: bytes, base_offset: int = 0) -> tuple[int, int]:
    state = _ffi.new_scan_state(0)
    assert _ffi.scan_segment(log, base_offset, 4096, state) == _ffi.SCAN_END
    return state.position, state.error


def test_truncation_at_every_byte_of_last_batch():
    head = make_batch(0, 2) + make_batch(2, 3)
    last = make_batch(5, 4, value_size=30)
    assert scan_stop(head + last) == (len(head + last), 0)
    assert scan_stop(head) == (len(head), 0)
    for cut in range(1, len(last)):
        assert scan_stop(head + last[:cut]) == (len(head), ERR["TRUNCATED"]), cut


def test_bit_flip_in_crc_covered_bytes_stops_at_that_batch():
    head = make_batch(0, 2) + make_batch(2, 3)
    last = make_batch(5, 4, value_size=30)
    for i in range(16, len(last)):
        broken = bytearray(last)
        broken[i] ^= 0x04
        position, error = scan_stop(head + bytes(broken) + make_batch(9))
        assert position == len(head), i
        assert error == (ERR["UNSUPPORTED_MAGIC"] if i == 16 else ERR["CRC_MISMATCH"]), i


def test_bit_flip_in_length_stops_at_that_batch():
    head = make_batch(0, 2)
    last = make_batch(2, 4, value_size=30)
    for i in range(8, 12):
        for bit in range(8):
            broken = bytearray(last)
            broken[i] ^= 1 << bit
            position, error = scan_stop(head + bytes(broken))
            assert position == len(head)
            assert error in (ERR["TRUNCATED"], ERR["CORRUPT_BATCH"], ERR["CRC_MISMATCH"])


def test_leader_epoch_is_outside_the_crc():
    batch = bytearray(make_batch(0))
    batch[12:16] = (77).to_bytes(4, "big")
    assert scan_stop(bytes(batch)) == (len(batch), 0)


@pytest.mark.parametrize("tail", [b"\x00" * 100, b"\x00" * 16, b"\xff" * 61, bytes(range(200))])
def test_garbage_tail_is_cut(tail):
    head = make_batch(0, 2) + make_batch(2, 3)
    position, error = scan_stop(head + tail)
    assert position == len(head) and error != 0


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=400))
def test_random_garbage_after_valid_batches(tail):
    head = make_batch(0, 2) + make_batch(2, 3, value_size=50)
    position, error = scan_stop(head + tail)
    if error == 0:  # only if the garbage happens to be whole valid batches
        assert position == len(head + tail)
    else:
        assert position >= len(head)
        assert kafka_recover(head + tail, 0, 4096)["position"] == position


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_region_never_crashes(region):
    state = _ffi.new_scan_state(0)
    assert _ffi.scan_segment(region, 0, 0, state, index_out=bytearray(80),
                             time_index_out=bytearray(120)) in (_ffi.SCAN_END,
                                                                _ffi.SCAN_OUTPUT_FULL)
    assert 0 <= state.position <= len(region)


@pytest.mark.parametrize("second_base", [0, 2, 3, 4])
def test_non_monotonic_offsets_stop_the_scan(second_base):
    first = make_batch(2, count=3)  # offsets 2..4
    log = first + make_batch(second_base)
    assert scan_stop(log) == (len(first), ERR["NON_MONOTONIC"])


def test_gaps_in_offsets_are_fine():
    log = make_batch(2, count=3) + make_batch(100)
    assert scan_stop(log) == (len(log), 0)


def test_offsets_outside_the_segment_stop_the_scan():
    below = make_batch(99)
    assert scan_stop(below, base_offset=100) == (0, ERR["OFFSET_OVERFLOW"])
    ok = make_batch(100 + INT32_MAX)
    assert scan_stop(ok, base_offset=100) == (len(ok), 0)
    too_far = make_batch(100 + INT32_MAX, count=2)  # last offset is base + 2^31
    assert scan_stop(too_far, base_offset=100) == (0, ERR["OFFSET_OVERFLOW"])


def test_verify_crc_off_skips_only_the_crc():
    batch = bytearray(make_batch(0))
    batch[17] ^= 0xFF
    state = _ffi.new_scan_state(0)
    _ffi.scan_segment(bytes(batch), 0, 4096, state, verify_crc=False)
    assert (state.position, state.error) == (len(batch), 0)
    batch[16] = 1
    state = _ffi.new_scan_state(0)
    _ffi.scan_segment(bytes(batch), 0, 4096, state, verify_crc=False)
    assert (state.position, state.error) == (0, ERR["UNSUPPORTED_MAGIC"])


# ------------------------------------------------------------------------------------------------
# Batch summaries and control records


def test_infos_describe_each_batch_and_markers():
    data = make_batch(0, 2, pid=9, epoch=2, seq=0, attributes=0x10)
    commit = make_marker(2, pid=9, commit=True, coordinator_epoch=11)
    plain = make_batch(3, 2)
    abort = make_marker(5, pid=9, commit=False, coordinator_epoch=12)
    log = data + commit + plain + abort
    _, _, _, infos, _ = scan(log)
    assert [(i.base_offset, i.last_offset, i.position, i.size) for i in infos] == [
        (0, 1, 0, len(data)), (2, 2, len(data), len(commit)),
        (3, 4, len(data + commit), len(plain)), (5, 5, len(data + commit + plain), len(abort))]
    assert [(i.control_type, i.coordinator_epoch) for i in infos] == [
        (-1, -1), (1, 11), (-1, -1), (0, 12)]
    assert infos[0].is_transactional and not infos[0].is_control
    assert infos[1].is_control and infos[1].producer_id == 9 and infos[1].producer_epoch == 2
    assert (infos[0].base_sequence, infos[0].records_count, infos[2].producer_id) == (0, 2, -1)
    assert (infos[0].base_timestamp, infos[0].max_timestamp) == (TS, TS + 1)
    _, _, _, producer_infos, _ = scan(log, producer_only=True)
    assert [i.base_offset for i in producer_infos] == [0, 2, 5]


def test_other_control_types_are_reported_without_epoch():
    leader_change = make_marker(0, pid=9, commit=True, key=struct.pack(">hh", 0, 2),
                                value=b"\x00\x00")
    unknown = make_marker(1, pid=9, commit=True, key=struct.pack(">hh", 0, 99))
    _, _, _, infos, _ = scan(leader_change + unknown)
    assert [(i.control_type, i.coordinator_epoch) for i in infos] == [(2, -1), (-1, -1)]


@pytest.mark.parametrize("key,value", [
    (b"\x00\x01", struct.pack(">hi", 0, 1)),            # key shorter than 4 bytes
    (struct.pack(">hh", -1, 1), struct.pack(">hi", 0, 1)),  # negative key version
    (struct.pack(">hh", 0, 1), b"\x00\x00\x00"),         # end-txn value shorter than 6 bytes
    (struct.pack(">hh", 0, 0), struct.pack(">hi", -3, 1)),  # negative value version
])
def test_malformed_marker_stops_recovery(key, value):
    head = make_batch(0)
    log = head + make_marker(1, pid=9, commit=True, key=key, value=value)
    assert scan_stop(log) == (len(head), ERR["INVALID_RECORD"])
    # Kafka only decodes markers of batches with a producer id.
    no_pid = bytearray(make_marker(1, pid=9, commit=True, key=key, value=value))
    h = _ffi.parse_header(no_pid)._asdict()
    h.update(producer_id=-1)
    del h["length"], h["crc"]
    _ffi.seal_batch(no_pid, _ffi.new_header(**h))
    assert scan_stop(head + bytes(no_pid)) == (len(head) + len(no_pid), 0)


# ------------------------------------------------------------------------------------------------
# Header-only walks


def three_batches():
    b = [make_batch(10, 3, ts=TS, ts_step=10), make_batch(13, 2, ts=TS + 5),
         make_batch(20, 5, ts=TS + 100, value_size=200)]
    return b, b"".join(b)


def test_find_offset_returns_first_batch_whose_last_offset_reaches_target():
    b, log = three_batches()
    for target, expected_base in [(0, 10), (10, 10), (12, 10), (13, 13), (14, 13), (15, 20),
                                  (19, 20), (24, 20)]:
        info = _ffi.find_offset(log, 0, target)
        assert info is not None and info.base_offset == expected_base, target
    assert _ffi.find_offset(log, 0, 25) is None
    info = _ffi.find_offset(log, len(b[0]), 11)  # starting after the first batch
    assert (info.base_offset, info.position, info.size) == (13, len(b[0]), len(b[1]))
    assert _ffi.find_offset(log, len(log), 0) is None


def test_find_offset_stops_quietly_at_partial_tail_and_raises_on_corrupt_header():
    b, log = three_batches()
    assert _ffi.find_offset(log[:-1], 0, 20) is None
    broken = bytearray(log)
    broken[len(b[0]) + 8:len(b[0]) + 12] = (3).to_bytes(4, "big")
    with pytest.raises(errors.CorruptRecord):
        _ffi.find_offset(bytes(broken), 0, 20)


def test_find_offset_reads_headers_only():
    b, log = three_batches()
    broken = bytearray(log)
    broken[-1] ^= 0xFF  # CRC now wrong: a header walk does not care
    assert _ffi.find_offset(bytes(broken), 0, 24).base_offset == 20


def test_find_timestamp_returns_first_batch_whose_max_reaches_target():
    b, log = three_batches()
    assert _ffi.find_timestamp(log, 0, TS).base_offset == 10
    assert _ffi.find_timestamp(log, 0, TS + 20).base_offset == 10    # batch 1 max = TS + 20
    assert _ffi.find_timestamp(log, 0, TS + 21).base_offset == 20
    assert _ffi.find_timestamp(log, 0, TS + 104).base_offset == 20
    assert _ffi.find_timestamp(log, 0, TS + 105) is None
    assert _ffi.find_timestamp(log, len(b[0]), TS).base_offset == 13


def test_read_extent_takes_whole_batches_within_max_bytes():
    b, log = three_batches()
    s0, s1, s2 = (len(x) for x in b)
    assert _ffi.read_extent(log, 0, 10**6, 10**6) == (len(log), 25)
    assert _ffi.read_extent(log, 0, s0 + s1, 10**6) == (s0 + s1, 15)
    assert _ffi.read_extent(log, 0, s0 + s1 + s2 - 1, 10**6) == (s0 + s1, 15)
    assert _ffi.read_extent(log, s0, s1 + s2, 10**6) == (len(log), 25)


def test_read_extent_kip74_first_batch_even_if_larger_than_max_bytes():
    b, log = three_batches()
    assert _ffi.read_extent(log, 0, 0, 10**6) == (len(b[0]), 13)
    assert _ffi.read_extent(log, len(b[0]) + len(b[1]), 1, 10**6) == (len(log), 25)


def test_read_extent_respects_upper_offset():
    b, log = three_batches()
    assert _ffi.read_extent(log, 0, 10**6, 20) == (len(b[0]) + len(b[1]), 15)
    assert _ffi.read_extent(log, 0, 10**6, 13) == (len(b[0]), 13)
    assert _ffi.read_extent(log, 0, 10**6, 11) == (len(b[0]), 13)  # base 10 < 11: whole batch
    assert _ffi.read_extent(log, 0, 10**6, 10) == (0, -1)           # nothing qualifies


def test_read_extent_stops_at_partial_tail_and_corrupt_batches():
    b, log = three_batches()
    assert _ffi.read_extent(log[:-5], 0, 10**6, 10**6) == (len(b[0]) + len(b[1]), 15)
    assert _ffi.read_extent(log, len(log), 10**6, 10**6) == (len(log), -1)
    broken = bytearray(log)
    broken[len(b[0]) + 16] = 0  # magic of batch 2
    assert _ffi.read_extent(bytes(broken), 0, 10**6, 10**6) == (len(b[0]), 13)
    with pytest.raises(errors.UnsupportedForMessageFormat):
        _ffi.read_extent(bytes(broken), len(b[0]), 10**6, 10**6)
    with pytest.raises(errors.LogstoreError, match="invalid argument"):
        _ffi.read_extent(log, 0, -1, 10**6)
