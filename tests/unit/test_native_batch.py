"""Record batch v2 in the C core (csrc/record_batch.c), through logstore._ffi.

Goal: batches built here are byte-identical to Kafka's (KAFKA_FACTS.md 1.10 vectors and an
independent encoder), headers parse and validate as Kafka's ensureValid does, the base offset and
leader epoch patch in place without touching the CRC, records round-trip, and every malformed
records region is rejected with an error, never a crash or an out-of-bounds read.
Method: fixed vectors byte for byte; kafka-python's DefaultRecordBatchBuilder/DefaultRecordBatch
as the oracle for hypothesis-generated batches; hand-made malformed regions for each rule; random
and mutated bytes into every decoder (run under ASan in `make test-asan`).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from logstore import _ffi, errors

TS = 1_700_000_000_000  # 0x18bcfe56800

COMMIT_MARKER = bytes.fromhex(
    "0000000000000005 00000042 00000000 02 ad320ccb 0030 00000000 0000018bcfe56800"
    " 0000018bcfe56800 00000000000003e8 0003 ffffffff 00000001"
    " 20 00 00 00 08 00000001 0c 000000000007 00".replace(" ", ""))

DATA_BATCH = bytes.fromhex(
    "0000000000000000 00000047 00000000 02 97cfdb6d 0000 00000001 0000018bcfe56800"
    " 0000018bcfe56805 ffffffffffffffff ffff ffffffff 00000002"
    " 10 00 00 00 02 6b 02 76 00  18 00 0a 02 01 04 7676 02 02 68 02 78".replace(" ", ""))

DECODE_ERRORS = (errors.CorruptRecord, errors.InvalidRecord)


# ------------------------------------------------------------------------------------------------
# Helpers: records as (timestamp, key, value, headers) with headers [(str, bytes | None)].


def zz(n: int) -> bytes:
    """Zigzag varint/varlong, written independently of the C code."""
    u = (n << 1) ^ (n >> 63)
    u &= (1 << 64) - 1
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def header_section(headers) -> bytes:
    if not headers:
        return b"\x00"
    keys = [k.encode() for k, _ in headers]
    values = [v for _, v in headers]
    out = bytearray(5 + sum(10 + len(k) + len(v or b"") for k, v in zip(keys, values)))
    n = _ffi.encode_headers(
        out, len(headers), b"".join(keys), np.array([len(k) for k in keys], np.int32),
        b"".join(v for v in values if v is not None),
        np.array([-1 if v is None else len(v) for v in values], np.int32))
    return bytes(out[:n])


def record_columns(records):
    sections = [header_section(h) for _, _, _, h in records]
    return dict(
        timestamps=np.array([r[0] for r in records], np.int64),
        keys=b"".join(r[1] for r in records if r[1] is not None),
        key_lengths=np.array([-1 if r[1] is None else len(r[1]) for r in records], np.int32),
        values=b"".join(r[2] for r in records if r[2] is not None),
        value_lengths=np.array([-1 if r[2] is None else len(r[2]) for r in records], np.int32),
        headers=b"".join(sections),
        headers_lengths=np.array([len(s) for s in sections], np.int32),
    )


def build(records, **fields) -> bytes:
    cols = record_columns(records)
    bound = _ffi.records_size_bound(len(records), len(cols["keys"]), len(cols["values"]),
                                    len(cols["headers"]))
    out = bytearray(_ffi.BATCH_OVERHEAD + bound)
    header = _ffi.new_header(**fields)
    n = _ffi.build_batch(out, header, len(records), cols["timestamps"], cols["keys"],
                         cols["key_lengths"], cols["values"], cols["value_lengths"],
                         cols["headers"], cols["headers_lengths"])
    return bytes(out[:n])


def decode(batch: bytes):
    """[(timestamp, offset_delta, key, value, headers)] of a valid uncompressed batch."""
    header = _ffi.validate_batch(batch)
    region = batch[_ffi.BATCH_OVERHEAD:header.size]
    cols = _ffi.decode_records(region, header.records_count)
    out = []
    for i in range(header.records_count):
        key = None if cols.key_lengths[i] < 0 else region[
            cols.key_offsets[i]:cols.key_offsets[i] + cols.key_lengths[i]]
        value = None if cols.value_lengths[i] < 0 else region[
            cols.value_offsets[i]:cols.value_offsets[i] + cols.value_lengths[i]]
        start = int(cols.headers_offsets[i])
        section = region[start:start + int(cols.headers_lengths[i])]
        headers = [(section[ko:ko + kl].decode(), None if vl < 0 else section[vo:vo + vl])
                   for ko, kl, vo, vl in _ffi.decode_headers(section, int(cols.headers_counts[i]))]
        out.append((header.base_timestamp + int(cols.timestamp_deltas[i]),
                    int(cols.offset_deltas[i]), key, value, headers))
    return out


def assert_spans_in_bounds(region: bytes, count: int) -> None:
    """Whatever a decoder accepts, every span it reports lies inside the region."""
    cols = _ffi.decode_records(region, count)
    for i in range(count):
        for off, n in ((cols.key_offsets[i], cols.key_lengths[i]),
                       (cols.value_offsets[i], cols.value_lengths[i]),
                       (cols.headers_offsets[i], cols.headers_lengths[i])):
            assert 0 <= off <= len(region)
            assert n == -1 or (n >= 0 and off + n <= len(region))


# ------------------------------------------------------------------------------------------------
# KAFKA_FACTS.md 1.10 vectors


def test_commit_marker_vector_byte_for_byte():
    """The COMMIT marker: its one control record encoded, then sealed with the header fields."""
    key = (0).to_bytes(2, "big") + (1).to_bytes(2, "big")          # version 0, type COMMIT
    value = (0).to_bytes(2, "big") + (7).to_bytes(4, "big")        # version 0, coordinatorEpoch 7
    out = bytearray(_ffi.BATCH_OVERHEAD + _ffi.records_size_bound(1, 4, 6, 0))
    region = memoryview(out)[_ffi.BATCH_OVERHEAD:]
    used = _ffi.encode_records(region, 1, TS, np.array([TS], np.int64), key,
                               np.array([4], np.int32), value, np.array([6], np.int32))
    batch = memoryview(out)[:_ffi.BATCH_OVERHEAD + used]
    header = _ffi.new_header(base_offset=5, partition_leader_epoch=0, attributes=0x30,
                             last_offset_delta=0, base_timestamp=TS, max_timestamp=TS,
                             producer_id=1000, producer_epoch=3, base_sequence=-1,
                             records_count=1)
    sealed = _ffi.seal_batch(batch, header)
    assert bytes(batch) == COMMIT_MARKER
    assert sealed.length == 0x42 and sealed.crc == 0xAD320CCB
    assert len(COMMIT_MARKER) == 78  # KAFKA_FACTS.md 1.8: the smallest end-txn marker


def test_data_batch_vector_byte_for_byte():
    batch = build([(TS, b"k", b"v", []), (TS + 5, None, b"vv", [("h", b"x")])],
                  partition_leader_epoch=0, base_timestamp=TS)
    assert batch == DATA_BATCH


def test_build_takes_the_first_timestamp_as_base_when_none_given():
    batch = build([(TS, b"k", b"v", []), (TS + 5, None, b"vv", [("h", b"x")])],
                  partition_leader_epoch=0)
    assert batch == DATA_BATCH


def test_parse_header_of_commit_marker():
    h = _ffi.parse_header(COMMIT_MARKER)
    assert h == _ffi.BatchHeader(
        base_offset=5, length=0x42, partition_leader_epoch=0, magic=2, crc=0xAD320CCB,
        attributes=0x30, last_offset_delta=0, base_timestamp=TS, max_timestamp=TS,
        producer_id=1000, producer_epoch=3, base_sequence=-1, records_count=1)
    assert h.size == 78 and h.last_offset == 5


def test_decode_data_vector():
    assert decode(DATA_BATCH) == [(TS, 0, b"k", b"v", []), (TS + 5, 1, None, b"vv", [("h", b"x")])]


def test_decode_commit_marker_record():
    [(ts, delta, key, value, headers)] = decode(COMMIT_MARKER)
    assert (ts, delta, headers) == (TS, 0, [])
    assert key == b"\x00\x00\x00\x01" and value == b"\x00\x00\x00\x00\x00\x07"


def test_struct_decoder_agrees_with_column_decoder():
    region = DATA_BATCH[_ffi.BATCH_OVERHEAD:]
    structs = _ffi.decode_record_structs(region, 2)
    cols = _ffi.decode_records(region, 2)
    assert structs == [tuple(int(c[i]) for c in cols) for i in range(2)]


# ------------------------------------------------------------------------------------------------
# Validation (ensureValid) and in-place patches


@pytest.mark.parametrize("vector", [COMMIT_MARKER, DATA_BATCH], ids=["marker", "data"])
def test_crc_mismatch_detected_at_every_covered_byte(vector):
    for i in range(_ffi.LOG_OVERHEAD + 5, len(vector)):  # bytes [17, end): CRC field + [21, end)
        for bit in (0, 7):
            broken = bytearray(vector)
            broken[i] ^= 1 << bit
            with pytest.raises(errors.CorruptRecord, match="CRC"):
                _ffi.validate_batch(broken)


def test_bytes_outside_crc_do_not_affect_it():
    for i in list(range(0, 8)) + list(range(12, 16)):  # baseOffset, partitionLeaderEpoch
        changed = bytearray(COMMIT_MARKER)
        changed[i] ^= 0xFF
        assert _ffi.validate_batch(changed).crc == 0xAD320CCB


def test_set_base_offset_and_leader_epoch_keep_crc_valid():
    batch = bytearray(DATA_BATCH)
    _ffi.set_base_offset(batch, 1_234_567_890_123)
    _ffi.set_partition_leader_epoch(batch, 42)
    h = _ffi.validate_batch(batch)
    assert (h.base_offset, h.partition_leader_epoch, h.crc) == (1_234_567_890_123, 42, 0x97CFDB6D)
    assert h.last_offset == 1_234_567_890_124
    assert batch[17:] == DATA_BATCH[17:]


def test_validate_checks_only_the_first_batch_of_a_longer_buffer():
    h = _ffi.validate_batch(DATA_BATCH + COMMIT_MARKER + b"\xff" * 5)
    assert h.size == len(DATA_BATCH)


def test_parse_header_rejects_short_buffers_as_truncated():
    for n in (0, 16, 60):
        with pytest.raises(errors.CorruptRecord, match="partial tail"):
            _ffi.parse_header(DATA_BATCH[:n])
    with pytest.raises(errors.CorruptRecord, match="partial tail"):
        _ffi.parse_header(DATA_BATCH[:-1])


def test_parse_header_rejects_other_magic():
    for magic in (0, 1, 3, 0xFF):
        broken = bytearray(DATA_BATCH)
        broken[16] = magic
        with pytest.raises(errors.UnsupportedForMessageFormat):
            _ffi.parse_header(broken)
        with pytest.raises(errors.UnsupportedForMessageFormat):
            _ffi.set_base_offset(broken, 1)


@pytest.mark.parametrize("length", [-1, 0, 14, 48])
def test_parse_header_rejects_impossible_length(length):
    broken = bytearray(DATA_BATCH)
    broken[8:12] = length.to_bytes(4, "big", signed=True)
    with pytest.raises(errors.CorruptRecord, match="corrupt record batch"):
        _ffi.parse_header(broken)


def _resealed(**fields) -> bytes:
    """DATA_BATCH with header fields replaced and a valid CRC."""
    batch = bytearray(DATA_BATCH)
    h = _ffi.parse_header(batch)._asdict()
    h.update(fields)
    h.pop("length")
    h.pop("crc")
    _ffi.seal_batch(batch, _ffi.new_header(**h))
    return bytes(batch)


@pytest.mark.parametrize("fields", [
    {"attributes": 0x80}, {"attributes": 0x100}, {"attributes": -32768},
    {"attributes": 5}, {"attributes": 7}, {"records_count": -1}, {"last_offset_delta": -1},
], ids=lambda f: f"{next(iter(f))}={next(iter(f.values()))}")
def test_validate_rejects_impossible_header_fields(fields):
    batch = _resealed(**fields)
    _ffi.parse_header(batch)  # framing is fine, only ensureValid objects
    with pytest.raises(errors.CorruptRecord, match="corrupt record batch"):
        _ffi.validate_batch(batch)


def test_validate_accepts_every_codec_and_flag():
    for attributes in (0, 1, 2, 3, 4, 0x08, 0x10, 0x20, 0x30, 0x40, 0x7C):
        assert _ffi.validate_batch(_resealed(attributes=attributes)).attributes == attributes


def test_seal_rejects_non_v2_and_short_buffers():
    with pytest.raises(errors.LogstoreError, match="invalid argument"):
        _ffi.seal_batch(bytearray(DATA_BATCH), _ffi.new_header(magic=1))
    with pytest.raises(errors.LogstoreError, match="invalid argument"):
        _ffi.seal_batch(bytearray(60), _ffi.new_header())


# ------------------------------------------------------------------------------------------------
# Building and round trips


def test_round_trip_with_null_keys_values_and_headers():
    records = [
        (TS, None, None, []),
        (TS - 10, b"", b"", [("", b"")]),
        (TS + 1, b"key", None, [("a", None), ("b", b"\x00\xff"), ("ünï", b"v" * 300)]),
        (TS + 2**40, b"k" * 200, b"v" * 70000, []),
    ]
    batch = build(records, base_offset=100, producer_id=7, producer_epoch=1, base_sequence=3)
    h = _ffi.validate_batch(batch)
    assert (h.records_count, h.last_offset_delta, h.base_timestamp, h.max_timestamp) == (
        4, 3, TS, TS + 2**40)
    assert (h.base_offset, h.producer_id, h.producer_epoch, h.base_sequence) == (100, 7, 1, 3)
    assert decode(batch) == [(ts, i, k, v, hd) for i, (ts, k, v, hd) in enumerate(records)]


def test_build_without_timestamps_uses_base_timestamp():
    out = bytearray(200)
    h = _ffi.new_header(base_timestamp=TS)
    n = _ffi.build_batch(out, h, 2, None, None, None, b"ab", np.array([1, 1], np.int32))
    assert [r[:4] for r in decode(bytes(out[:n]))] == [(TS, 0, None, b"a"), (TS, 1, None, b"b")]
    assert h.max_timestamp == TS and h.records_count == 2 and h.last_offset_delta == 1


def test_build_keeps_max_timestamp_under_log_append_time():
    out = bytearray(200)
    h = _ffi.new_header(attributes=0x08, max_timestamp=TS + 999)
    n = _ffi.build_batch(out, h, 1, np.array([TS], np.int64), None, None, b"x",
                         np.array([1], np.int32))
    assert _ffi.validate_batch(bytes(out[:n])).max_timestamp == TS + 999


def test_build_rejects_compression_bits_and_empty_batches():
    out = bytearray(200)
    for attributes in (1, 4):
        with pytest.raises(errors.LogstoreError, match="invalid argument"):
            _ffi.build_batch(out, _ffi.new_header(attributes=attributes), 1, None, None, None,
                             b"x", np.array([1], np.int32))
    with pytest.raises(errors.LogstoreError, match="invalid argument"):
        _ffi.build_batch(out, _ffi.new_header(), 0, None, None, None, None, None)


def test_build_reports_a_short_buffer_and_leaves_header_alone():
    h = _ffi.new_header()
    for cap in (0, 60, 61, 70):
        with pytest.raises(errors.LogstoreError, match="too small"):
            _ffi.build_batch(bytearray(cap), h, 1, np.array([TS], np.int64), b"k" * 10,
                             np.array([10], np.int32), b"v", np.array([1], np.int32))
    assert h.base_timestamp == -1 and h.records_count == 0 and h.crc == 0


def test_encode_rejects_bad_lengths_and_header_sections():
    out = bytearray(100)
    bad = [
        dict(keys=b"k", key_lengths=np.array([-2], np.int32)),
        dict(keys=None, key_lengths=np.array([3], np.int32)),
        dict(headers=b"\x02", headers_lengths=np.array([1], np.int32)),     # 1 header, no bytes
        dict(headers=b"\x00\x00", headers_lengths=np.array([2], np.int32)),  # trailing byte
        dict(headers=b"", headers_lengths=np.array([0], np.int32)),          # no count varint
        dict(headers=b"\x02\x01\x00", headers_lengths=np.array([3], np.int32)),  # null key
    ]
    for case in bad:
        args = dict(keys=None, key_lengths=None, headers=None, headers_lengths=None) | case
        with pytest.raises(errors.LogstoreError, match="invalid argument"):
            _ffi.encode_records(out, 1, 0, None, args["keys"], args["key_lengths"], b"v",
                                np.array([1], np.int32), args["headers"],
                                args["headers_lengths"])


def test_encode_headers_rejects_null_keys():
    with pytest.raises(errors.LogstoreError, match="invalid argument"):
        _ffi.encode_headers(bytearray(20), 1, b"", np.array([-1], np.int32), b"", None)


def test_size_bound_is_an_upper_bound_at_the_extremes():
    records = [(-(2**63), b"k" * 3, b"v" * 5, [("x", None)])] * 3 + [(2**63 - 1, None, None, [])]
    cols = record_columns(records)
    bound = _ffi.records_size_bound(4, len(cols["keys"]), len(cols["values"]),
                                    len(cols["headers"]))
    out = bytearray(bound)
    used = _ffi.encode_records(out, 4, 0, cols["timestamps"], cols["keys"], cols["key_lengths"],
                               cols["values"], cols["value_lengths"], cols["headers"],
                               cols["headers_lengths"])
    assert used <= bound
    with pytest.raises(errors.LogstoreError, match="too small"):
        _ffi.encode_records(bytearray(used - 1), 4, 0, cols["timestamps"], cols["keys"],
                            cols["key_lengths"], cols["values"], cols["value_lengths"],
                            cols["headers"], cols["headers_lengths"])
    with pytest.raises(errors.LogstoreError):
        _ffi.records_size_bound(-1, 0, 0, 0)


# ------------------------------------------------------------------------------------------------
# kafka-python as an independent oracle

TIMESTAMPS = st.integers(min_value=0, max_value=2**41)
RECORDS = st.lists(
    st.tuples(TIMESTAMPS, st.none() | st.binary(max_size=40), st.none() | st.binary(max_size=200),
              st.lists(st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=20)),
                       max_size=3)),
    min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(RECORDS, st.booleans())
def test_build_matches_kafka_python_byte_for_byte(records, idempotent):
    pid, epoch, seq = (4242, 3, 17) if idempotent else (-1, -1, -1)
    oracle = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                       producer_id=pid, producer_epoch=epoch,
                                       base_sequence=seq, batch_size=10**9)
    for i, (ts, key, value, headers) in enumerate(records):
        assert oracle.append(i, timestamp=ts, key=key, value=value, headers=headers) is not None
    expected = bytes(oracle.build())
    ours = build(records, partition_leader_epoch=0, producer_id=pid, producer_epoch=epoch,
                 base_sequence=seq)
    assert ours == expected


@settings(max_examples=150, deadline=None)
@given(RECORDS)
def test_kafka_python_reads_what_we_build(records):
    batch = build(records, base_offset=1000)
    parsed = DefaultRecordBatch(batch)
    assert parsed.validate_crc()
    got = [(r.timestamp, r.offset, r.key, r.value, [(k, v) for k, v in r.headers])
           for r in parsed]
    assert got == [(ts, 1000 + i, k, v, h) for i, (ts, k, v, h) in enumerate(records)]
    assert decode(batch) == [(ts, i, k, v, h) for i, (ts, k, v, h) in enumerate(records)]


# ------------------------------------------------------------------------------------------------
# Malformed records regions: each rule of DefaultRecord.readFrom (and stricter ones)


def rec(body: bytes) -> bytes:
    return zz(len(body)) + body


GOOD_BODY = b"\x00" + zz(0) + zz(0) + zz(1) + b"k" + zz(1) + b"v" + zz(0)

MALFORMED = {
    "varint_too_long": (b"\xff" * 6, 1),
    "varlong_too_long": (rec(b"\x00" + b"\x80" * 10 + b"\x00" + zz(0) + zz(-1) + zz(-1)
                             + zz(0)), 1),
    "negative_record_length": (zz(-2) + GOOD_BODY, 1),
    "record_length_past_end": (zz(len(GOOD_BODY) + 1) + GOOD_BODY, 1),
    "record_length_short_of_fields": (zz(len(GOOD_BODY) - 1) + GOOD_BODY, 1),
    "record_length_beyond_fields": (rec(GOOD_BODY + b"\x00"), 1),
    "empty_record_body": (zz(0), 1),
    "key_length_minus_two": (rec(b"\x00" + zz(0) + zz(0) + zz(-2) + zz(-1) + zz(0)), 1),
    "key_past_record_end": (rec(b"\x00" + zz(0) + zz(0) + zz(50) + b"k" + zz(-1) + zz(0)), 1),
    "value_length_minus_five": (rec(b"\x00" + zz(0) + zz(0) + zz(-1) + zz(-5) + zz(0)), 1),
    "negative_header_count": (rec(b"\x00" + zz(0) + zz(0) + zz(-1) + zz(-1) + zz(-1)), 1),
    "header_count_past_end": (rec(b"\x00" + zz(0) + zz(0) + zz(-1) + zz(-1) + zz(30)), 1),
    "null_header_key": (rec(b"\x00" + zz(0) + zz(0) + zz(-1) + zz(-1) + zz(1) + zz(-1)
                            + zz(-1)), 1),
    "header_value_minus_two": (rec(b"\x00" + zz(0) + zz(0) + zz(-1) + zz(-1) + zz(1) + zz(1)
                                   + b"h" + zz(-2)), 1),
    "header_value_past_end": (rec(b"\x00" + zz(0) + zz(0) + zz(-1) + zz(-1) + zz(1) + zz(1)
                                  + b"h" + zz(9) + b"x"), 1),
    "fewer_records_than_count": (rec(GOOD_BODY), 2),
    "trailing_bytes": (rec(GOOD_BODY) + b"\x00", 1),
    "count_zero_with_bytes": (rec(GOOD_BODY), 0),
    "count_cannot_fit": (rec(GOOD_BODY), 2**31 - 1),
    "truncated_mid_varint": (rec(GOOD_BODY) + b"\x80", 2),
}


def test_good_body_decodes():
    # length, attributes, timestampDelta, offsetDelta, keyLength: the key starts at byte 5.
    assert _ffi.decode_record_structs(rec(GOOD_BODY), 1)[0] == (0, 0, 5, 1, 7, 1, 9, 0, 0)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_region_rejected(name):
    region, count = MALFORMED[name]
    with pytest.raises(errors.InvalidRecord):
        _ffi.decode_records(region, count)
    with pytest.raises(errors.InvalidRecord):
        _ffi.decode_record_structs(region, count)


def test_negative_count_rejected():
    with pytest.raises(DECODE_ERRORS):
        _ffi.decode_records(rec(GOOD_BODY), -1)


def test_headers_decoder_rejects_malformed_headers():
    for section, count in [(zz(-1) + zz(-1), 1), (zz(1) + b"h" + zz(-2), 1),
                           (zz(5) + b"h", 1), (zz(1) + b"h" + zz(3) + b"x", 1),
                           (zz(1) + b"h" + zz(-1), 2)]:
        with pytest.raises(errors.InvalidRecord):
            _ffi.decode_headers(section, count)
    assert _ffi.decode_headers(zz(1) + b"h" + zz(-1), 1) == [(1, 1, 3, -1)]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=60))
def test_random_bytes_never_crash_the_decoders(region, count):
    try:
        _ffi.decode_records(region, count)
    except DECODE_ERRORS:
        pass
    else:
        assert_spans_in_bounds(region, count)
    try:
        _ffi.validate_batch(region)
    except (errors.CorruptRecord, errors.UnsupportedForMessageFormat):
        pass


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_mutated_valid_regions_decode_or_raise(data):
    region = bytearray(DATA_BATCH[_ffi.BATCH_OVERHEAD:] + COMMIT_MARKER[_ffi.BATCH_OVERHEAD:])
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(region) - 1))
        region[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(region)))
    region = bytes(region[:cut])
    count = data.draw(st.integers(0, 4))
    try:
        _ffi.decode_records(region, count)
    except DECODE_ERRORS:
        return
    assert_spans_in_bounds(region, count)
