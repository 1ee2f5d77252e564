"""The C helpers of the embedded clients: librdkafka's partitioner hashes and the consumer's
message construction (ls_records_build_objects).

Method: the partition functions against confluent_kafka's own murmur2/fnv1a/consistent
functions (librdkafka's code) over random keys, murmur2's hash against the Python
transcription of Kafka's Utils.murmur2; build_record_objects against RecordBatch.records()
(the independent Python decoder) over random batches, plus its refusals."""

from __future__ import annotations

import gc
import zlib

import confluent_kafka
import pytest
from hypothesis import given
from hypothesis import strategies as st

from logstore import _ffi, record_batch
from logstore.errors import InvalidRecord, LogstoreError
from logstore.partitioner import murmur2
from txn.message import (CONSTANT_SLOTS, MESSAGE_SLOTS, RECORD_SLOTS, TIMESTAMP_CREATE_TIME,
                         Message)

PARTITION_COUNTS = (1, 2, 3, 7, 100, 1000)


@given(st.binary(max_size=64))
def test_murmur2_in_c_equals_kafkas_utils_murmur2(key):
    assert _ffi.murmur2(key) == murmur2(key)


@given(st.binary(max_size=48))
def test_partitions_equal_librdkafkas_partitioners(key):
    for count in PARTITION_COUNTS:
        assert _ffi.murmur2_partition(key, len(key), count) == \
            confluent_kafka.murmur2(key, count)
        assert _ffi.fnv1a_partition(key, len(key), count) == confluent_kafka.fnv1a(key, count)
        assert zlib.crc32(key) % count == confluent_kafka.consistent(key, count)


def test_partition_functions_refuse_no_partitions():
    assert _ffi.murmur2_partition(b"k", 1, 0) < 0
    assert _ffi.fnv1a_partition(b"k", 1, -1) < 0


def _constants(leader_epoch=-1, timestamp_type=TIMESTAMP_CREATE_TIME):
    return ("topic", 3, None, timestamp_type, None, leader_epoch)


def _build(batch: bytes, min_offset: int = 0, out=None):
    view = record_batch.RecordBatch(batch)
    out = [] if out is None else out
    count = _ffi.build_record_objects(
        view.records_region(), view.records_count, view.base_offset, view.base_timestamp,
        view.timestamp_type == record_batch.LOG_APPEND_TIME, view.max_timestamp, min_offset,
        Message, MESSAGE_SLOTS, _constants(), out)
    return count, out


records = st.lists(st.tuples(
    st.none() | st.binary(max_size=40), st.none() | st.binary(max_size=200),
    st.none() | st.lists(st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=8)),
                         max_size=3),
    st.integers(0, 2**41)), min_size=1, max_size=30)


@given(records, st.integers(0, 1000))
def test_objects_equal_the_python_decoder(rows, base_offset):
    keys = [r[0] for r in rows]
    values = [r[1] for r in rows]
    headers = [r[2] for r in rows]
    timestamps = [r[3] for r in rows]
    batch = bytes(record_batch.build_batch(values, keys, headers, timestamps,
                                           base_offset=base_offset))
    count, out = _build(batch)
    expected = record_batch.RecordBatch(batch).records()
    assert count == len(out) == len(expected)
    for message, record in zip(out, expected):
        assert (message.offset(), message.key(), message.value()) == \
            (record.offset, record.key, record.value)
        assert message.headers() == (record.headers or None)
        assert message.timestamp() == (TIMESTAMP_CREATE_TIME, record.timestamp)
        assert (message.topic(), message.partition(), message.error()) == ("topic", 3, None)
        assert message.leader_epoch() is None


def test_records_below_min_offset_are_skipped():
    batch = bytes(record_batch.build_batch([b"a", b"b", b"c", b"d"], base_offset=10))
    count, out = _build(batch, min_offset=12)
    assert count == 2
    assert [m.offset() for m in out] == [12, 13]
    assert [m.value() for m in out] == [b"c", b"d"]


def test_log_append_time_gives_every_record_the_batch_max_timestamp():
    batch = bytes(record_batch.build_batch([b"a", b"b"], timestamps=[5, 6],
                                           timestamp_type=record_batch.LOG_APPEND_TIME,
                                           now_ms=99))
    _, out = _build(batch)
    assert [m.timestamp()[1] for m in out] == [99, 99]


def test_messages_are_not_tracked_by_the_cycle_collector():
    _, out = _build(bytes(record_batch.build_batch([b"a"], headers=[[("h", b"v")]])))
    assert not gc.is_tracked(out[0])
    assert out[0].headers() == [("h", b"v")]


def test_a_malformed_region_raises_and_appends_nothing():
    batch = bytearray(record_batch.build_batch([b"abc", b"def"]))
    region = bytes(batch[record_batch.HEADER_SIZE:-1])          # one byte short
    out = ["kept"]
    with pytest.raises(InvalidRecord):
        _ffi.build_record_objects(region, 2, 0, 0, False, 0, 0, Message, MESSAGE_SLOTS,
                                  _constants(), out)
    assert out == ["kept"]


def test_a_header_key_that_is_not_utf8_is_decoded_as_java_does():
    # Java's new String(bytes, UTF_8) replaces invalid sequences with U+FFFD; so do the C
    # builder and the Python decoder (RecordBatch.records_python), so every reader agrees.
    batch = bytearray(record_batch.build_batch([b"v"], headers=[[("k", b"x")]]))
    at = bytes(batch).index(b"k\x02x")
    batch[at] = 0xFF
    region = bytes(batch[record_batch.HEADER_SIZE:])
    out = []
    _ffi.build_record_objects(region, 1, 0, 0, False, 0, 0, Message, MESSAGE_SLOTS,
                              _constants(), out)
    assert out[0].headers() == [("\ufffd", b"x")]
    assert record_batch.RecordBatch(batch).records_python()[0].headers == [("\ufffd", b"x")]


def test_slot_descriptors_must_belong_to_the_class():
    class Other:
        __slots__ = ("a",)
    region = bytes(record_batch.build_batch([b"v"])[record_batch.HEADER_SIZE:])
    with pytest.raises(LogstoreError):
        _ffi.build_record_objects(region, 1, 0, 0, False, 0, 0, Message,
                                  (Other.a,) + MESSAGE_SLOTS[1:], _constants(), [])
    with pytest.raises(LogstoreError):                       # one constant missing
        _ffi.build_record_objects(region, 1, 0, 0, False, 0, 0, Message, MESSAGE_SLOTS,
                                  _constants()[:-1], [])
    assert len(RECORD_SLOTS) == 5 and len(CONSTANT_SLOTS) == len(_constants())
