"""logstore.record_batch: the v2 batch view, building, control batches, append validation.

Goal: batches are byte-identical to what Kafka writes (the KAFKA_FACTS.md 1.10 vectors, built
through the public builders), every header field reads back as written, and each rule of
`validate_for_append` rejects exactly its own violation with the right error class.
Method: known-answer vectors; batches crafted by patching header fields and resealing the CRC
with the independent `crc32c` package, so no test relies on the code under test to forge input.
"""

from __future__ import annotations

import struct
from array import array

import crc32c as crc32c_ref
import pytest

from logstore import compression
from logstore import record_batch as rb
from logstore.errors import (CorruptRecord, InvalidConfiguration, InvalidRecord, LogstoreError,
                             RecordTooLarge, UnsupportedCompressionType,
                             UnsupportedForMessageFormat)

TS = 1_700_000_000_000
MAX_MESSAGE_BYTES = 1_048_588
CODECS = [compression.NONE, compression.GZIP, compression.SNAPPY, compression.LZ4,
          compression.ZSTD]

VECTOR_COMMIT = bytes.fromhex(
    "0000000000000005 00000042 00000000 02 ad320ccb 0030 00000000 0000018bcfe56800"
    " 0000018bcfe56800 00000000000003e8 0003 ffffffff 00000001"
    " 20 00 00 00 08 00000001 0c 000000000007 00".replace(" ", ""))
VECTOR_DATA = bytes.fromhex(
    "0000000000000000 00000047 00000000 02 97cfdb6d 0000 00000001 0000018bcfe56800"
    " 0000018bcfe56805 ffffffffffffffff ffff ffffffff 00000002"
    " 10 00 00 00 02 6b 02 76 00  18 00 0a 02 01 04 7676 02 02 68 02 78".replace(" ", ""))

# Header field offsets (KAFKA_FACTS.md 1.1), for crafting batches by hand.
FIELDS = {"base_offset": (0, ">q"), "length": (8, ">i"), "magic": (16, ">b"),
          "attributes": (21, ">h"), "last_offset_delta": (23, ">i"),
          "base_timestamp": (27, ">q"), "max_timestamp": (35, ">q"), "producer_id": (43, ">q"),
          "producer_epoch": (51, ">h"), "base_sequence": (53, ">i"), "records_count": (57, ">i")}


def reseal(buf, **fields) -> bytearray:
    """A copy of buf with header fields replaced and the CRC recomputed independently."""
    out = bytearray(buf)
    for name, value in fields.items():
        offset, fmt = FIELDS[name]
        struct.pack_into(fmt, out, offset, value)
    struct.pack_into(">I", out, 17, crc32c_ref.crc32c(bytes(out[21:])))
    return out


def varint(n: int) -> bytes:
    z, out = (n << 1) ^ (n >> 63), bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    return bytes(out + bytes([z]))


def raw_record(offset_delta: int, value: bytes, timestamp_delta: int = 0) -> bytes:
    body = (b"\x00" + varint(timestamp_delta) + varint(offset_delta) + varint(-1)
            + varint(len(value)) + value + varint(0))
    return varint(len(body)) + body


def batch_from_region(region: bytes, count: int, codec: int = 0, **fields) -> bytearray:
    """A batch around a hand-made records region, header fields from `fields`."""
    payload = compression.compress(codec, region) if codec else region
    header = dict(base_offset=0, length=49 + len(payload), magic=2, attributes=codec,
                  last_offset_delta=count - 1, base_timestamp=TS, max_timestamp=TS,
                  producer_id=-1, producer_epoch=-1, base_sequence=-1, records_count=count)
    header.update(fields)
    return reseal(bytes(61) + payload, **header)


# ------------------------------------------------------------------------------------------------
# Test vectors


def test_commit_marker_vector_is_reproduced_byte_for_byte():
    built = rb.build_control_batch(rb.COMMIT, producer_id=1000, producer_epoch=3,
                                   coordinator_epoch=7, timestamp_ms=TS, base_offset=5,
                                   partition_leader_epoch=0)
    assert bytes(built) == VECTOR_COMMIT
    assert len(built) == 78


def test_data_vector_is_reproduced_byte_for_byte():
    built = rb.build_batch([b"v", b"vv"], keys=[b"k", None], headers=[[], [("h", b"x")]],
                           timestamps=[TS, TS + 5], partition_leader_epoch=0)
    assert bytes(built) == VECTOR_DATA


def test_commit_vector_properties():
    batch = rb.RecordBatch(VECTOR_COMMIT)
    assert (batch.base_offset, batch.last_offset, batch.next_offset) == (5, 5, 6)
    assert (batch.size, batch.length, batch.partition_leader_epoch) == (78, 66, 0)
    assert (batch.magic, batch.crc, batch.attributes) == (2, 0xAD320CCB, 0x30)
    assert (batch.compression, batch.timestamp_type) == (0, rb.CREATE_TIME)
    assert batch.is_transactional and batch.is_control and not batch.has_delete_horizon
    assert (batch.base_timestamp, batch.max_timestamp) == (TS, TS)
    assert (batch.producer_id, batch.producer_epoch) == (1000, 3)
    assert (batch.base_sequence, batch.last_sequence, batch.records_count) == (-1, -1, 1)
    assert batch.has_producer_id and batch.delete_horizon_ms is None
    assert batch.is_valid()
    batch.validate()
    assert batch.control_record() == rb.ControlRecord(0, rb.COMMIT, 7)


def test_data_vector_records():
    batch = rb.RecordBatch(VECTOR_DATA)
    assert batch.is_valid()
    assert batch.records() == [
        rb.Record(0, TS, b"k", b"v", []),
        rb.Record(1, TS + 5, None, b"vv", [("h", b"x")]),
    ]
    assert not batch.is_control and not batch.is_transactional
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (-1, -1, -1)
    assert not batch.has_producer_id


def test_abort_marker():
    built = rb.build_control_batch(rb.ABORT, 42, 1, 9, TS)
    batch = rb.RecordBatch(built)
    assert len(built) == 78 and batch.attributes == 0x30 and batch.base_sequence == -1
    assert batch.partition_leader_epoch == -1
    assert batch.control_record() == rb.ControlRecord(0, rb.ABORT, 9)


def test_control_batch_arguments_are_checked():
    with pytest.raises(ValueError, match="control_type"):
        rb.build_control_batch(2, 1, 0, 0, TS)
    with pytest.raises(ValueError, match="producer id"):
        rb.build_control_batch(rb.COMMIT, -1, 0, 0, TS)


# ------------------------------------------------------------------------------------------------
# The view


def test_every_property_reads_back_what_was_built():
    built = rb.build_batch([b"a", b"b", b"c"], timestamps=[TS + 3, TS + 9, TS + 1],
                           base_offset=1000, compression=compression.LZ4, producer_id=77,
                           producer_epoch=5, base_sequence=10, transactional=True,
                           partition_leader_epoch=12)
    batch = rb.RecordBatch(built)
    assert (batch.base_offset, batch.last_offset, batch.next_offset) == (1000, 1002, 1003)
    assert batch.size == len(built) == batch.length + 12
    assert batch.partition_leader_epoch == 12
    assert batch.compression == compression.LZ4
    assert batch.attributes == compression.LZ4 | 0x10
    assert batch.timestamp_type == rb.CREATE_TIME
    assert batch.is_transactional and not batch.is_control and not batch.has_delete_horizon
    assert (batch.base_timestamp, batch.max_timestamp) == (TS + 3, TS + 9)
    assert (batch.producer_id, batch.producer_epoch) == (77, 5)
    assert (batch.base_sequence, batch.last_sequence, batch.records_count) == (10, 12, 3)
    assert batch.crc == crc32c_ref.crc32c(bytes(built[21:]))
    assert bytes(batch) == bytes(built) and len(batch) == len(built)
    assert [r.offset for r in batch.records()] == [1000, 1001, 1002]
    assert [r.timestamp for r in batch.records()] == [TS + 3, TS + 9, TS + 1]


def test_view_does_not_copy():
    built = bytearray(VECTOR_DATA) + b"trailing"
    batch = rb.RecordBatch(built)
    assert batch.buffer.obj is built
    assert len(batch.buffer) == len(VECTOR_DATA)


def test_last_sequence_wraps_like_kafka():
    built = rb.build_batch([b"x"] * 5, producer_id=1, producer_epoch=0,
                           base_sequence=2**31 - 2)
    assert rb.RecordBatch(built).last_sequence == 2
    assert rb.increment_sequence(2**31 - 1, 1) == 0
    assert rb.increment_sequence(5, 3) == 8


def test_delete_horizon_flag():
    batch = rb.RecordBatch(reseal(VECTOR_DATA, attributes=0x40))
    assert batch.has_delete_horizon and batch.delete_horizon_ms == TS
    assert rb.RecordBatch(VECTOR_DATA).delete_horizon_ms is None


def test_log_append_time_gives_every_record_the_max_timestamp():
    built = rb.build_batch([b"a", b"b"], timestamps=[TS, TS + 7], timestamp_type=1,
                           now_ms=TS + 100)
    batch = rb.RecordBatch(built)
    assert batch.timestamp_type == rb.LOG_APPEND_TIME and batch.attributes == 0x08
    assert batch.max_timestamp == TS + 100
    assert [r.timestamp for r in batch.records()] == [TS + 100, TS + 100]


def test_timestamps_default_to_now_and_may_go_backwards():
    batch = rb.RecordBatch(rb.build_batch([b"a", b"b"], now_ms=TS))
    assert [r.timestamp for r in batch.records()] == [TS, TS]
    batch = rb.RecordBatch(rb.build_batch([b"a", b"b", b"c"], timestamps=[TS, TS - 50, TS + 1]))
    assert batch.base_timestamp == TS and batch.max_timestamp == TS + 1
    assert [r.timestamp for r in batch.records()] == [TS, TS - 50, TS + 1]


def test_crc_catches_a_flipped_byte_and_ignores_offset_and_epoch():
    built = bytearray(VECTOR_DATA)
    batch = rb.RecordBatch(built)
    batch.set_base_offset(123)
    batch.set_partition_leader_epoch(9)
    assert (batch.base_offset, batch.partition_leader_epoch) == (123, 9)
    assert rb.RecordBatch(built).base_offset == 123 and batch.is_valid()
    built[70] ^= 0x01
    assert not batch.is_valid()
    with pytest.raises(CorruptRecord, match="stored CRC 0x97cfdb6d, computed 0x"):
        batch.validate()


def test_validate_rejects_unused_attribute_bits_like_recovery():
    with pytest.raises(CorruptRecord):
        rb.RecordBatch(reseal(VECTOR_DATA, attributes=0x80)).validate()


def test_records_of_a_batch_whose_count_disagrees_with_its_bytes_are_invalid():
    batch = rb.RecordBatch(reseal(VECTOR_DATA, records_count=3, last_offset_delta=2))
    with pytest.raises(InvalidRecord):
        batch.records()


def test_header_keys_are_utf8_and_null_header_values_survive():
    headers = [[("ключ", None), ("", b""), ("k" * 300, b"v" * 300)]]
    batch = rb.RecordBatch(rb.build_batch([None], keys=[b""], headers=headers))
    (record,) = batch.records()
    assert record.key == b"" and record.value is None
    assert record.headers == headers[0]


def test_control_record_of_a_data_batch_is_an_error():
    with pytest.raises(InvalidRecord, match="not a control batch"):
        rb.RecordBatch(VECTOR_DATA).control_record()


def test_control_batch_emptied_by_compaction_has_no_marker():
    empty = reseal(VECTOR_COMMIT[:61], length=49, records_count=0)
    assert rb.RecordBatch(empty).control_record() is None


def test_control_record_parsing_follows_kafka():
    parse = rb.ControlRecord.parse
    assert parse(b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x07") == rb.ControlRecord(0, 1, 7)
    assert parse(b"\x00\x05\x00\x01\xff", b"\x00\x01\x00\x00\x00\x07\xff").coordinator_epoch == 7
    assert parse(b"\x00\x00\x00\x63", None).type == rb.ControlRecord.UNKNOWN
    assert parse(b"\x00\x00\x00\x02", None) == rb.ControlRecord(0, 2, -1)
    with pytest.raises(InvalidRecord, match="at least 4 bytes"):
        parse(b"\x00\x00\x00", None)
    with pytest.raises(InvalidRecord, match="key version -1"):
        parse(b"\xff\xff\x00\x01", b"\x00" * 6)
    with pytest.raises(InvalidRecord, match="at least 6 bytes"):
        parse(b"\x00\x00\x00\x01", b"\x00\x00\x00")
    with pytest.raises(InvalidRecord, match="marker version -2"):
        parse(b"\x00\x00\x00\x01", b"\xff\xfe\x00\x00\x00\x07")


# ------------------------------------------------------------------------------------------------
# iter_batches


def test_iter_batches_walks_concatenated_batches_and_stops_at_a_partial_tail():
    third = rb.build_batch([b"c"] * 3, base_offset=3, compression=compression.ZSTD)
    buf = VECTOR_DATA + VECTOR_COMMIT + bytes(third)
    for tail in (b"", bytes(third)[:16], bytes(third)[:17], bytes(third)[:-1]):
        batches = list(rb.iter_batches(buf + tail))
        assert [b.base_offset for b in batches] == [0, 5, 3]
        assert [b.size for b in batches] == [83, 78, len(third)]
    assert [b.base_offset for b in rb.iter_batches(buf, start=83)] == [5, 3]


def test_iter_batches_rejects_impossible_lengths_and_other_magics():
    with pytest.raises(CorruptRecord, match="length 13, less than the minimum"):
        list(rb.iter_batches(VECTOR_DATA + reseal(VECTOR_DATA, length=13)))
    with pytest.raises(UnsupportedForMessageFormat, match="byte 83 has magic 1"):
        list(rb.iter_batches(VECTOR_DATA + reseal(VECTOR_DATA, magic=1)))
    with pytest.raises(CorruptRecord):    # long enough to frame, too short for a v2 header
        list(rb.iter_batches(reseal(VECTOR_DATA, length=20)))


# ------------------------------------------------------------------------------------------------
# build_batch arguments


def test_values_may_be_any_bytes_like_or_none():
    values = [b"a", bytearray(b"bc"), memoryview(b"def"), None, b"",
              array("i", [1, 2])]
    records = rb.RecordBatch(rb.build_batch(values)).records()
    assert [r.value for r in records] == [b"a", b"bc", b"def", None, b"",
                                          array("i", [1, 2]).tobytes()]
    assert all(r.key is None for r in records)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"values": []}, ValueError, "at least one record"),
    ({"values": ["text"]}, TypeError, "value 0 is str"),
    ({"values": [b"a"], "keys": [b"k", b"k"]}, ValueError, "1 values but 2 keys"),
    ({"values": [b"a"], "keys": [1]}, TypeError, "key 0 is int"),
    ({"values": [b"a"], "headers": [[(b"k", b"v")]]}, TypeError, "header key"),
    ({"values": [b"a"], "headers": [[("k", "v")]]}, TypeError, "header 'k' of record 0"),
    ({"values": [b"a"], "timestamps": [1, 2]}, ValueError, "1 values but 2 timestamps"),
    ({"values": [b"a"], "transactional": True}, ValueError, "producer id"),
    ({"values": [b"a"], "timestamp_type": 2}, ValueError, "timestamp_type"),
    ({"values": [b"a"], "compression": 5}, UnsupportedCompressionType, "5"),
    ({"values": [b"a"], "compression": 3, "compression_level": 18}, InvalidConfiguration,
     "compression.lz4.level"),
])
def test_build_batch_rejects_bad_arguments(kwargs, error, match):
    values = kwargs.pop("values")
    with pytest.raises(error, match=match):
        rb.build_batch(values, **kwargs)


@pytest.mark.parametrize("codec", CODECS)
def test_compressed_batches_hold_one_stream_of_the_plain_records_region(codec):
    values = [b"value-%d" % i for i in range(300)]
    plain = rb.build_batch(values, now_ms=TS)
    packed = rb.build_batch(values, now_ms=TS, compression=codec)
    assert bytes(packed[21:23]) == struct.pack(">h", codec)
    region = compression.decompress(codec, bytes(packed[61:]), 1 << 20)
    assert region == bytes(plain[61:])
    assert rb.RecordBatch(packed).records() == rb.RecordBatch(plain).records()


# ------------------------------------------------------------------------------------------------
# validate_for_append: one test per rule


@pytest.mark.parametrize("codec", CODECS)
def test_valid_appends_pass_and_return_the_batch(codec):
    built = rb.build_batch([b"x" * 50] * 20, producer_id=3, producer_epoch=0, base_sequence=0,
                           transactional=True, compression=codec)
    batch = rb.validate_for_append(built, MAX_MESSAGE_BYTES)
    assert batch.records_count == 20 and batch.compression == codec


def test_append_shorter_than_a_header_is_corrupt():
    with pytest.raises(CorruptRecord, match="too short"):
        rb.validate_for_append(VECTOR_DATA[:16], MAX_MESSAGE_BYTES)


def test_append_with_another_magic_is_unsupported():
    with pytest.raises(UnsupportedForMessageFormat, match="magic 1"):
        rb.validate_for_append(reseal(VECTOR_DATA, magic=1), MAX_MESSAGE_BYTES)


def test_append_with_a_length_below_the_header_is_corrupt():
    with pytest.raises(CorruptRecord, match="length 48 is less than the minimum 49"):
        rb.validate_for_append(reseal(VECTOR_DATA, length=48), MAX_MESSAGE_BYTES)


def test_append_cut_short_is_corrupt():
    with pytest.raises(CorruptRecord, match="declares 83 bytes but the append holds only 82"):
        rb.validate_for_append(VECTOR_DATA[:-1], MAX_MESSAGE_BYTES)


def test_append_of_two_batches_is_invalid():
    with pytest.raises(InvalidRecord, match="exactly one record batch: the first ends at byte 83"):
        rb.validate_for_append(VECTOR_DATA + VECTOR_DATA, MAX_MESSAGE_BYTES)


def test_append_with_a_nonzero_base_offset_is_invalid():
    with pytest.raises(InvalidRecord, match="should be 0, but it is 7"):
        rb.validate_for_append(reseal(VECTOR_DATA, base_offset=7), MAX_MESSAGE_BYTES)
    rb.validate_for_append(reseal(VECTOR_DATA, base_offset=7), MAX_MESSAGE_BYTES,
                           require_zero_base_offset=False)


def test_append_larger_than_max_message_bytes_is_too_large():
    rb.validate_for_append(VECTOR_DATA, 83)
    with pytest.raises(RecordTooLarge, match="is 83 bytes which exceeds .* value of 82"):
        rb.validate_for_append(VECTOR_DATA, 82)


def test_append_with_a_bad_crc_is_corrupt():
    bad = bytearray(VECTOR_DATA)
    bad[-1] ^= 0xFF
    with pytest.raises(CorruptRecord, match="stored CRC 0x97cfdb6d, computed 0x"):
        rb.validate_for_append(bad, MAX_MESSAGE_BYTES)


def test_append_with_unused_attribute_bits_is_corrupt():
    with pytest.raises(CorruptRecord, match="unused attribute bits set .attributes 0x0100"):
        rb.validate_for_append(reseal(VECTOR_DATA, attributes=0x100), MAX_MESSAGE_BYTES)


def test_append_with_an_unknown_codec_is_corrupt():
    with pytest.raises(CorruptRecord, match="unknown compression codec id 5"):
        rb.validate_for_append(reseal(VECTOR_DATA, attributes=5), MAX_MESSAGE_BYTES)


def test_append_with_no_records_is_invalid():
    empty = reseal(VECTOR_DATA[:61], length=49, records_count=0, last_offset_delta=0)
    with pytest.raises(InvalidRecord, match="invalid reported count for record batch: 0"):
        rb.validate_for_append(empty, MAX_MESSAGE_BYTES)


def test_append_with_a_negative_offset_range_is_invalid():
    with pytest.raises(InvalidRecord, match=r"invalid offset range \[0, -1\]"):
        rb.validate_for_append(reseal(VECTOR_DATA, last_offset_delta=-1), MAX_MESSAGE_BYTES)


def test_append_whose_last_offset_delta_disagrees_with_count_is_invalid():
    with pytest.raises(InvalidRecord, match=r"inconsistent batch offset range \[0, 2\] and "
                                            r"count of records 2"):
        rb.validate_for_append(reseal(VECTOR_DATA, last_offset_delta=2), MAX_MESSAGE_BYTES)


def test_append_of_a_control_batch_is_invalid():
    with pytest.raises(InvalidRecord, match="not allowed to write control records"):
        rb.validate_for_append(reseal(VECTOR_COMMIT, base_offset=0), MAX_MESSAGE_BYTES)


def test_append_with_a_producer_id_but_no_sequence_is_invalid():
    with pytest.raises(InvalidRecord, match="sequence number -1 .* producerId 1000"):
        rb.validate_for_append(reseal(VECTOR_DATA, producer_id=1000, producer_epoch=0),
                               MAX_MESSAGE_BYTES)


@pytest.mark.parametrize("codec", CODECS)
def test_append_whose_offset_deltas_are_not_0_to_n_is_invalid(codec):
    region = raw_record(0, b"a") + raw_record(2, b"b")
    with pytest.raises(InvalidRecord, match=r"record 1 of the batch has offset delta 2, "
                                            r"expected 1"):
        rb.validate_for_append(batch_from_region(region, 2, codec), MAX_MESSAGE_BYTES)
    rb.validate_for_append(batch_from_region(raw_record(0, b"a") + raw_record(1, b"b"), 2, codec),
                           MAX_MESSAGE_BYTES)


@pytest.mark.parametrize("codec", CODECS)
def test_append_whose_region_holds_more_or_fewer_records_than_declared_is_invalid(codec):
    region = raw_record(0, b"a") + raw_record(1, b"b")
    for count in (1, 3):
        with pytest.raises(InvalidRecord):
            rb.validate_for_append(batch_from_region(region, count, codec), MAX_MESSAGE_BYTES)


def test_append_with_a_malformed_header_section_is_invalid():
    body = b"\x00" + varint(0) + varint(0) + varint(-1) + varint(1) + b"v" + varint(1) \
        + varint(-1) + b""     # one header whose key length is -1 (keys are never null)
    region = varint(len(body)) + body
    with pytest.raises(InvalidRecord):
        rb.validate_for_append(batch_from_region(region, 1), MAX_MESSAGE_BYTES)


@pytest.mark.parametrize("codec", [compression.GZIP, compression.SNAPPY, compression.LZ4,
                                   compression.ZSTD])
def test_append_with_a_corrupt_compressed_stream_is_corrupt_naming_the_codec(codec):
    good = rb.build_batch([b"payload %d" % i for i in range(100)], compression=codec)
    bad = reseal(good[:61] + b"\x00garbage\x00" * 10, length=49 + 90)
    name = compression.codec_name(codec)
    with pytest.raises(CorruptRecord, match=f"^{name}: "):
        rb.validate_for_append(bad, MAX_MESSAGE_BYTES)


def test_append_that_decompresses_past_the_bound_is_corrupt():
    bomb = rb.build_batch([bytes(1 << 20)] * 4, compression=compression.ZSTD)
    assert len(bomb) < 2000
    with pytest.raises(CorruptRecord, match="exceeds the limit of 1000000 bytes"):
        rb.validate_for_append(bomb, MAX_MESSAGE_BYTES, max_decompressed_bytes=1_000_000)
    rb.validate_for_append(bomb, MAX_MESSAGE_BYTES)


# ------------------------------------------------------------------------------------------------
# The C boundary: the encoders take no sizes for the concatenated columns


@pytest.mark.parametrize("columns, match", [
    ((2, None, None, None, b"a", array("i", [1, 5])), "value lengths add up to 6 bytes"),
    ((3, None, None, None, b"abc", array("i", [1, 1])), "value lengths must be 3 int32"),
    ((1, None, b"k", array("i", [4]), b"a", array("i", [1])), "key lengths add up to 4"),
    ((2, array("q", [1]), None, None, b"ab", array("i", [1, 1])), "timestamps must be 2 int64"),
    ((1, None, None, None, b"abcdefgh", array("q", [1])),
     "value lengths must be 1 int32 entries, got 8 bytes of 8-byte items"),
])
def test_inconsistent_columns_never_reach_the_c_encoder(columns, match):
    from logstore import _ffi
    with pytest.raises(LogstoreError, match="build batch: invalid argument: " + match):
        _ffi.build_batch(bytearray(1000), _ffi.new_header(), *columns)
    with pytest.raises(LogstoreError, match="encode records: invalid argument: " + match):
        _ffi.encode_records(bytearray(1000), columns[0], 0, *columns[1:])
