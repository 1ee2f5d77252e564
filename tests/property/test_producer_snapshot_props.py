"""Properties of producer-state .snapshot files (KAFKA_FACTS.md 3.6).

Goal: a snapshot round-trips byte for byte; any damaged byte or cut is detected; `load` falls
back from a corrupt newest snapshot to the older one; and the bytes follow Kafka's table, as
checked by a decoder written here from that table alone (struct offsets, and CRC-32C from the
`crc32c` PyPI package rather than logstore's own).
Method: hypothesis-generated producer entries (every field over its full type range, with and
without a data batch and an open transaction) and managers driven through real appends.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections import deque

import crc32c as oracle
import pytest
from hypothesis import given
from hypothesis import strategies as st

from txn.producer_state import (AppendOrigin, BatchMetadata, CorruptSnapshot,
                                ProducerStateEntry, ProducerStateManager, decode_snapshot,
                                encode_snapshot)

INT16 = st.integers(-(2**15), 2**15 - 1)
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
NOW_MS = 1_700_000_000_000
EXPIRATION_MS = 10**15                   # nothing expires in these tests


@st.composite
def entries(draw, max_size: int = 12) -> list[ProducerStateEntry]:
    pids = draw(st.lists(INT64, unique=True, max_size=max_size))
    out = []
    for pid in pids:
        txn_first = draw(st.one_of(st.just(-1), st.integers(0, 2**63 - 1)))
        entry = ProducerStateEntry(pid, draw(INT16), draw(INT32), draw(INT64), txn_first)
        if draw(st.booleans()):          # a data batch; else markers only (lastOffset -1)
            entry.batches.append(BatchMetadata.of(
                draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**63 - 1)),
                draw(st.integers(0, 2**31 - 1)), entry.last_timestamp))
        out.append(entry)
    return out


def saved_fields(entry: ProducerStateEntry) -> tuple:
    """What a snapshot keeps of an entry (Kafka's writeSnapshot)."""
    return (entry.producer_id, entry.producer_epoch, entry.last_seq, entry.last_data_offset,
            entry.last_offset_delta, entry.last_timestamp, entry.coordinator_epoch,
            entry.current_txn_first_offset)


def independent_decode(data: bytes) -> list[tuple]:
    """Parse a snapshot from the table of KAFKA_FACTS.md 3.6, sharing no code with the module."""
    assert len(data) >= 10
    version = int.from_bytes(data[0:2], "big", signed=True)
    crc = int.from_bytes(data[2:6], "big", signed=False)
    count = int.from_bytes(data[6:10], "big", signed=True)
    assert version == 1
    assert crc == oracle.crc32c(data[6:])
    assert len(data) == 10 + 46 * count
    fields = []
    for i in range(count):
        e = data[10 + 46 * i: 10 + 46 * (i + 1)]
        fields.append((
            int.from_bytes(e[0:8], "big", signed=True),      # producerId
            int.from_bytes(e[8:10], "big", signed=True),     # epoch
            int.from_bytes(e[10:14], "big", signed=True),    # lastSequence
            int.from_bytes(e[14:22], "big", signed=True),    # lastOffset
            int.from_bytes(e[22:26], "big", signed=True),    # offsetDelta
            int.from_bytes(e[26:34], "big", signed=True),    # timestamp
            int.from_bytes(e[34:38], "big", signed=True),    # coordinatorEpoch
            int.from_bytes(e[38:46], "big", signed=True)))   # currentTxnFirstOffset
    return fields


@given(entries())
def test_snapshot_round_trips_byte_for_byte(generated):
    data = encode_snapshot(generated)
    decoded = decode_snapshot(data)
    assert [saved_fields(e) for e in decoded] == [saved_fields(e) for e in generated]
    assert encode_snapshot(decoded) == data
    assert independent_decode(data) == [saved_fields(e) for e in generated]


@given(entries(max_size=4), st.integers(1, 255))
def test_every_damaged_byte_is_detected(generated, mask):
    data = encode_snapshot(generated)
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= mask
        with pytest.raises(CorruptSnapshot):
            decode_snapshot(bytes(damaged))


@given(entries(max_size=3), st.binary(min_size=1, max_size=50))
def test_cut_or_extended_files_are_detected(generated, extra):
    data = encode_snapshot(generated)
    for length in range(len(data)):
        with pytest.raises(CorruptSnapshot):
            decode_snapshot(data[:length])
    with pytest.raises(CorruptSnapshot):
        decode_snapshot(data + extra)


def test_crc_errors_name_the_stored_and_computed_values():
    data = bytearray(encode_snapshot([ProducerStateEntry(1, 0)]))
    data[-1] ^= 1
    with pytest.raises(CorruptSnapshot, match="stored crc 0x[0-9a-f]{8}, computed crc 0x"):
        decode_snapshot(bytes(data), "x.snapshot")


def _manager(directory: str) -> ProducerStateManager:
    return ProducerStateManager(directory, "orders-0", producer_id_expiration_ms=EXPIRATION_MS,
                                time_ms=lambda: NOW_MS)


def _drive(psm: ProducerStateManager, ops: list[tuple[int, int, bool]], offset: int) -> int:
    """Append one batch per (pid, count, transactional), committing every open transaction of
    a pid that switches to non-transactional writes. Returns the next offset."""
    for pid, count, txn in ops:
        entry = psm.entry(pid)
        if entry is not None and entry.has_open_txn and not txn:
            psm.prepare_marker(pid, 0, 0, AppendOrigin.COORDINATOR)
            psm.complete_marker(pid, 0, 0, True, offset, NOW_MS)
            offset += 1
        seq = 0 if entry is None else entry.last_seq + 1
        info = psm.prepare_append(pid, 0, seq, count - 1, txn, NOW_MS + offset,
                                  AppendOrigin.CLIENT)
        psm.update(info, offset, offset + count - 1)
        offset += count
    return offset


OPS = st.lists(st.tuples(st.integers(0, 5), st.integers(1, 4), st.booleans()), max_size=15)


@given(OPS)
def test_a_written_snapshot_parses_with_the_independent_decoder(ops):
    with tempfile.TemporaryDirectory() as directory:
        psm = _manager(directory)
        end = _drive(psm, ops, 0)
        path = psm.take_snapshot(end)
        with open(path, "rb") as f:
            data = f.read()
        assert os.path.basename(path) == f"{end:020d}.snapshot"
        assert independent_decode(data) == [saved_fields(e) for e in psm.entries()]


@given(OPS, OPS, st.data())
def test_load_skips_a_corrupt_newest_snapshot_and_falls_back(first_ops, more_ops, data):
    with tempfile.TemporaryDirectory() as directory:
        psm = _manager(directory)
        older_offset = _drive(psm, first_ops, 0)
        psm.take_snapshot(older_offset)
        older_state = [saved_fields(e) for e in psm.entries()]
        newer_offset = _drive(psm, more_ops, older_offset) + 1
        newest = psm.take_snapshot(newer_offset)
        with open(newest, "r+b") as f:
            raw = bytearray(f.read())
            position = data.draw(st.integers(0, len(raw) - 1), label="position")
            raw[position] ^= data.draw(st.integers(1, 255), label="mask")
            f.seek(0)
            f.write(raw)
        fresh = _manager(directory)
        assert fresh.load(0, newer_offset) == older_offset
        assert fresh.snapshot_offsets() == [older_offset]
        assert [saved_fields(e) for e in fresh.entries()] == older_state
        fresh.check_invariants()


@given(entries(max_size=6))
def test_loaded_entries_keep_one_batch_and_their_open_transactions(generated):
    data = encode_snapshot(generated)
    with tempfile.TemporaryDirectory() as directory:
        with open(os.path.join(directory, f"{7:020d}.snapshot"), "wb") as f:
            f.write(data)
        psm = _manager(directory)
        assert psm.load(0, 7) == 7
        psm.check_invariants()
        expected = {e.producer_id: e.current_txn_first_offset for e in generated
                    if e.current_txn_first_offset >= 0}
        assert list(psm.ongoing_transactions().items()) == sorted(expected.items(),
                                                                  key=lambda item: item[1])
        for entry in psm.entries():
            assert len(entry.batches) == (0 if entry.last_data_offset < 0 else 1)
            assert isinstance(entry.batches, deque)
