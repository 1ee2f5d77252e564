"""Interoperability with kafka-python, an independent implementation of the v2 record batch.

Goal: a batch kafka-python's producer code builds is one our broker side accepts and decodes to
the same records, and every batch we build is one kafka-python's consumer code reads with a
valid CRC and the same records, for every codec.

Method: kafka-python's DefaultRecordBatchBuilder / DefaultRecordBatch / MemoryRecords on one
side, logstore.record_batch on the other. kafka-python's codecs are its own: gzip through
the stdlib gzip module, lz4 through liblz4's frame API, zstd through a zstandard stream reader,
and snappy through its own xerial framing code. That framing code needs the `python-snappy`
module for raw blocks, which the test extra does not install, so `raw_snappy` supplies the two
raw-block functions python-snappy would (from cramjam); the xerial framing stays kafka-python's.
"""

from __future__ import annotations

import types
import warnings

import cramjam
import pytest

with warnings.catch_warnings():     # kafka-python's package import uses deprecated resources APIs
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka.codec
    from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
    from kafka.record.memory_records import MemoryRecords

from logstore import compression
from logstore import record_batch as rb

TS = 1_700_000_000_000
MAX_MESSAGE_BYTES = 1_048_588
CODECS = [compression.NONE, compression.GZIP, compression.SNAPPY, compression.LZ4,
          compression.ZSTD]
CODEC_IDS = [compression.codec_name(c) for c in CODECS]

PRODUCERS = {
    "plain": dict(producer_id=-1, producer_epoch=-1, base_sequence=-1, transactional=False),
    "idempotent": dict(producer_id=4001, producer_epoch=2, base_sequence=17,
                       transactional=False),
    "transactional": dict(producer_id=9_000_000_123, producer_epoch=7,
                          base_sequence=2**31 - 3, transactional=True),
}


@pytest.fixture(autouse=True)
def raw_snappy(monkeypatch):
    """python-snappy's raw block API, for kafka-python's own xerial framing code."""
    module = types.SimpleNamespace(
        compress=lambda data: bytes(cramjam.snappy.compress_raw(bytes(data))),
        decompress=lambda data: bytes(cramjam.snappy.decompress_raw(bytes(data))))
    monkeypatch.setattr(kafka.codec, "snappy", module)


def sample_records(count: int = 60):
    """(key, value, headers, timestamp) tuples: null/empty keys and values, null header values,
    unicode header keys, timestamps going backwards; compressible so no codec falls back."""
    records = []
    for i in range(count):
        key = None if i % 5 == 0 else (b"" if i % 7 == 0 else b"key-%d" % (i % 4))
        value = None if i % 11 == 3 else b"value %d " % i * (i % 3)
        headers = [] if i % 2 else [("trace-id", b"abc%d" % i), ("ключ-%d" % i, None)]
        records.append((key, value, headers, TS + (i * 37) % 101 - 50))
    return records


def kafka_python_batch(codec: int, producer: dict, records) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=codec, is_transactional=producer["transactional"],
        producer_id=producer["producer_id"], producer_epoch=producer["producer_epoch"],
        base_sequence=producer["base_sequence"], batch_size=1 << 20)
    for offset_delta, (key, value, headers, timestamp) in enumerate(records):
        assert builder.append(offset_delta, timestamp, key, value, headers) is not None
    return bytes(builder.build())


def kafka_python_read(buf: bytes):
    """(batch, [(offset, timestamp, key, value, headers)]) through kafka-python's reader."""
    batch = DefaultRecordBatch(buf)
    assert batch.validate_crc()
    return batch, [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]


def ours(records) -> list[tuple]:
    return [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in records]


# ------------------------------------------------------------------------------------------------
# kafka-python writes, logstore reads


@pytest.mark.parametrize("producer", list(PRODUCERS))
@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
def test_kafka_python_batches_pass_append_validation_and_decode_identically(codec, producer):
    records = sample_records()
    buf = kafka_python_batch(codec, PRODUCERS[producer], records)
    batch = rb.validate_for_append(buf, MAX_MESSAGE_BYTES)
    assert batch.compression == codec     # kafka-python kept the codec (data compresses)
    assert batch.is_transactional == PRODUCERS[producer]["transactional"]
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (
        PRODUCERS[producer]["producer_id"], PRODUCERS[producer]["producer_epoch"],
        PRODUCERS[producer]["base_sequence"])
    theirs_batch, theirs = kafka_python_read(buf)
    assert batch.last_sequence == theirs_batch.last_sequence
    assert ours(batch.records()) == theirs
    assert ours(batch.records()) == [(i, ts, k, v, h)
                                     for i, (k, v, h, ts) in enumerate(records)]


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
def test_kafka_python_single_record_batches_validate(codec):
    buf = kafka_python_batch(codec, PRODUCERS["plain"], [(None, b"x" * 200, [], TS)])
    assert rb.validate_for_append(buf, MAX_MESSAGE_BYTES).records()[0].value == b"x" * 200


# ------------------------------------------------------------------------------------------------
# logstore writes, kafka-python reads


@pytest.mark.parametrize("producer", list(PRODUCERS))
@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
def test_our_batches_are_read_by_kafka_python(codec, producer):
    records = sample_records()
    keys, values, headers, timestamps = (list(column) for column in zip(*records))
    built = rb.build_batch(values, keys, headers, timestamps, base_offset=500,
                           compression=codec, partition_leader_epoch=4, **PRODUCERS[producer])
    theirs_batch, theirs = kafka_python_read(bytes(built))
    assert theirs_batch.compression_type == codec
    assert (theirs_batch.base_offset, theirs_batch.leader_epoch) == (500, 4)
    assert theirs_batch.size_in_bytes == len(built)
    assert theirs_batch.is_transactional == PRODUCERS[producer]["transactional"]
    assert theirs_batch.producer_id == PRODUCERS[producer]["producer_id"]
    assert theirs_batch.last_sequence == rb.RecordBatch(built).last_sequence
    assert theirs == [(500 + i, ts, k, v, h) for i, (k, v, h, ts) in enumerate(records)]


@pytest.mark.parametrize("codec, level", [(compression.GZIP, 1), (compression.GZIP, 9),
                                          (compression.LZ4, 1), (compression.LZ4, 17),
                                          (compression.ZSTD, -5), (compression.ZSTD, 19)])
def test_non_default_levels_are_read_by_kafka_python(codec, level):
    values = [b"level test %d " % i * 20 for i in range(200)]
    built = rb.build_batch(values, compression=codec, compression_level=level, now_ms=TS)
    _, theirs = kafka_python_read(bytes(built))
    assert [value for _, _, _, value, _ in theirs] == values


def test_log_append_time_batches_read_the_same_in_kafka_python():
    built = rb.build_batch([b"a", b"b"], timestamps=[TS, TS + 1], timestamp_type=1,
                           now_ms=TS + 999, compression=compression.LZ4)
    theirs_batch, theirs = kafka_python_read(bytes(built))
    assert theirs_batch.timestamp_type == 1
    assert [ts for _, ts, _, _, _ in theirs] == [TS + 999, TS + 999]
    assert [r.timestamp for r in rb.RecordBatch(built).records()] == [TS + 999, TS + 999]


def test_our_transaction_markers_are_control_records_to_kafka_python():
    commit = rb.build_control_batch(rb.COMMIT, 4001, 2, 5, TS, base_offset=60)
    abort = rb.build_control_batch(rb.ABORT, 4001, 3, 5, TS, base_offset=61)
    batches = list(MemoryRecords(bytes(commit + abort)))
    assert [b.is_control_batch for b in batches] == [True, True]
    (commit_record,) = list(batches[0])
    (abort_record,) = list(batches[1])
    assert commit_record.commit and commit_record.offset == 60
    assert abort_record.abort and abort_record.offset == 61


@pytest.mark.parametrize("codec", CODECS, ids=CODEC_IDS)
def test_concatenated_batches_walk_the_same_in_both(codec):
    parts, offset = [], 0
    for n in (1, 7, 30):
        parts.append(bytes(rb.build_batch([b"m%d" % i for i in range(n)], base_offset=offset,
                                          compression=codec, now_ms=TS)))
        offset += n
    buf = b"".join(parts) + parts[0][:30]        # a partial tail, as a fetch may return
    theirs = MemoryRecords(buf)
    ours_batches = list(rb.iter_batches(buf))
    theirs_batches = []
    while theirs.has_next():
        theirs_batches.append(theirs.next_batch())
    assert [b.base_offset for b in ours_batches] == [b.base_offset for b in theirs_batches]
    assert [b.base_offset for b in ours_batches] == [0, 1, 8]
    for mine, their in zip(ours_batches, theirs_batches):
        assert [r.value for r in mine.records()] == [r.value for r in their]
