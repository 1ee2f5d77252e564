"""Properties of record batches: round trips, framing, and damage tolerance.

Goal: the builder and the reader agree for every input the API allows, under every codec,
both timestamp types and the producer/transaction fields, and every built batch passes the
broker's append validation; damaged bytes only ever raise logstore errors. Method: hypothesis
draws up to a few hundred records with null and empty keys and values, unicode header keys,
null header values and timestamps that go back and forth around the first one (negative
deltas), then compares the decoded records field by field; and it flips bits in and truncates
built batches, resealing the CRC so the damage reaches the record and codec decoders.
"""

from __future__ import annotations

import struct

import crc32c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logstore import compression
from logstore import record_batch as rb
from logstore.errors import LogstoreError

TS = 1_700_000_000_000
# At least these many examples; more under a larger Hypothesis profile (HYPOTHESIS_PROFILE).
PROFILE_EXAMPLES = settings().max_examples
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

payloads = st.one_of(st.none(), st.binary(max_size=64))
header_lists = st.lists(
    st.tuples(st.text(max_size=12), st.one_of(st.none(), st.binary(max_size=16))), max_size=3)


@st.composite
def record_lists(draw):
    count = draw(st.integers(min_value=1, max_value=300))
    values = draw(st.lists(payloads, min_size=count, max_size=count))
    keys = draw(st.one_of(st.none(), st.lists(payloads, min_size=count, max_size=count)))
    headers = draw(st.one_of(st.none(),
                             st.lists(header_lists, min_size=count, max_size=count)))
    first = draw(st.integers(min_value=-1, max_value=2 * TS))
    deltas = draw(st.lists(st.integers(min_value=-10**9, max_value=10**9),
                           min_size=count - 1, max_size=count - 1))
    return values, keys, headers, [first] + [first + d for d in deltas]


producer_fields = st.one_of(
    st.just({}),
    st.builds(lambda pid, epoch, seq, txn: {"producer_id": pid, "producer_epoch": epoch,
                                            "base_sequence": seq, "transactional": txn},
              st.integers(0, INT64_MAX), st.integers(0, 2**15 - 1), st.integers(0, 2**31 - 1),
              st.booleans()))


@settings(max_examples=max(PROFILE_EXAMPLES, 150), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(records=record_lists(), codec=st.sampled_from(sorted(compression.CODEC_NAMES)),
       timestamp_type=st.sampled_from([rb.CREATE_TIME, rb.LOG_APPEND_TIME]),
       producer=producer_fields, base_offset=st.integers(0, 2**62),
       leader_epoch=st.integers(-1, 2**31 - 1))
def test_records_round_trip(records, codec, timestamp_type, producer, base_offset,
                            leader_epoch):
    values, keys, headers, timestamps = records
    count = len(values)
    now_ms = TS + 12345
    built = rb.build_batch(values, keys, headers, timestamps, base_offset=base_offset,
                           compression=codec, timestamp_type=timestamp_type,
                           partition_leader_epoch=leader_epoch, now_ms=now_ms, **producer)
    batch = rb.RecordBatch(bytes(built))
    batch.validate()
    assert batch.size == len(built)
    assert (batch.base_offset, batch.last_offset, batch.records_count) == (
        base_offset, base_offset + count - 1, count)
    assert batch.compression == codec and batch.timestamp_type == timestamp_type
    assert batch.partition_leader_epoch == leader_epoch
    assert batch.producer_id == producer.get("producer_id", -1)
    assert batch.producer_epoch == producer.get("producer_epoch", -1)
    assert batch.base_sequence == producer.get("base_sequence", -1)
    assert batch.is_transactional == producer.get("transactional", False)
    assert batch.base_timestamp == timestamps[0]
    expected_max = now_ms if timestamp_type == rb.LOG_APPEND_TIME else max(timestamps)
    assert batch.max_timestamp == expected_max

    decoded = batch.records()
    assert [r.offset for r in decoded] == list(range(base_offset, base_offset + count))
    if timestamp_type == rb.LOG_APPEND_TIME:
        assert [r.timestamp for r in decoded] == [now_ms] * count
    else:
        assert [r.timestamp for r in decoded] == timestamps
    assert [r.value for r in decoded] == values
    assert [r.key for r in decoded] == (keys if keys is not None else [None] * count)
    expected_headers = headers if headers is not None else [[] for _ in range(count)]
    assert [r.headers for r in decoded] == [list(h) for h in expected_headers]

    rb.validate_for_append(built, 1 << 30, require_zero_base_offset=False)


@settings(max_examples=max(PROFILE_EXAMPLES, 100), deadline=None)
@given(batch_sizes=st.lists(st.integers(1, 20), min_size=1, max_size=8),
       cut=st.integers(0, 200), codec=st.sampled_from(sorted(compression.CODEC_NAMES)))
def test_iter_batches_returns_exactly_the_whole_batches(batch_sizes, cut, codec):
    parts, offset = [], 0
    for n in batch_sizes:
        parts.append(bytes(rb.build_batch([b"v%d" % i for i in range(n)], base_offset=offset,
                                          compression=codec, now_ms=TS)))
        offset += n
    buf = b"".join(parts)
    cut = min(cut, len(parts[-1]) - 1)
    truncated = buf[:len(buf) - cut] if cut else buf
    batches = list(rb.iter_batches(truncated))
    whole = len(parts) if cut == 0 else len(parts) - 1
    assert [bytes(b) for b in batches] == parts[:whole]
    assert all(b.is_valid() for b in batches)


def _sample_batch(codec: int) -> bytes:
    values = [None, b"", b"v" * 40, "é".encode() * 3, b"x"]
    keys = [b"k", None, b"", b"key", b"z" * 20]
    headers = [[], [("h", None)], [("ключ", b"1"), ("", b"")], [], [("a", b"b" * 10)]]
    return bytes(rb.build_batch(values, keys, headers, [TS, TS - 3, TS + 9, TS, TS + 1],
                                compression=codec, producer_id=8, producer_epoch=1,
                                base_sequence=0))


@settings(max_examples=max(PROFILE_EXAMPLES, 400), deadline=None)
@given(codec=st.sampled_from(sorted(compression.CODEC_NAMES)),
       flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1,
                      max_size=4),
       cut=st.integers(0, 40), reseal=st.booleans())
def test_damaged_batches_raise_logstore_errors_and_never_crash(codec, flips, cut, reseal):
    """Bit flips and truncation (with the CRC fixed up, so they reach the record and codec
    decoders) give a LogstoreError or a batch that decodes; never another exception."""
    buf = bytearray(_sample_batch(codec))
    for position, mask in flips:
        buf[position % len(buf)] ^= mask
    if cut:
        del buf[-cut:]
    if reseal and len(buf) > rb.CRC_START:
        struct.pack_into(">I", buf, 17, crc32c.crc32c(bytes(buf[rb.CRC_START:])))
    try:
        batch = rb.validate_for_append(buf, 1 << 20, require_zero_base_offset=False)
    except LogstoreError:
        pass
    else:
        assert len(batch.records()) == batch.records_count
    try:
        for batch in rb.iter_batches(buf):
            batch.records()
            if batch.is_control:
                batch.control_record()
    except LogstoreError:
        pass
