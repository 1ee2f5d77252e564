"""txn/txn_log.py: TransactionLogKey v0 and TransactionLogValue v0/v1, byte for byte.

The expected bytes below are assembled by hand from the schema tables (the module docstring and
Kafka's TransactionLog{Key,Value}.json), not produced by the encoder under test."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logstore.errors import CorruptRecord
from txn import txn_log
from txn.txn_log import TransactionLogValue

H = bytes.fromhex

TS_UPDATE = 1700000000000          # 0x0000018bcfe56800
TS_START = 1699999999000           # 0x0000018bcfe56418


def test_key_bytes():
    assert txn_log.encode_key("txn-1") == H("0000" "0005") + b"txn-1"
    assert txn_log.decode_key(H("0000" "0005") + b"txn-1") == "txn-1"


def test_key_unknown_version_is_skipped_not_misread():
    assert txn_log.decode_key(H("0001" "0005") + b"txn-1") is None


@pytest.mark.parametrize("bad", [b"", H("00"), H("0000" "0005") + b"txn", H("0000" "ffff"),
                                 H("0000" "0001") + b"ab"])
def test_key_corrupt(bad):
    with pytest.raises(CorruptRecord):
        txn_log.decode_key(bad)


def test_key_rejects_empty_or_huge_ids():
    with pytest.raises(ValueError):
        txn_log.encode_key("")
    with pytest.raises(ValueError):
        txn_log.encode_key("x" * 40000)


ONGOING_V0 = TransactionLogValue(
    producer_id=1000, producer_epoch=3, transaction_timeout_ms=60000, transaction_status=1,
    transaction_partitions=(("orders", (0, 2)),),
    transaction_last_update_timestamp_ms=TS_UPDATE, transaction_start_timestamp_ms=TS_START)

ONGOING_V0_BYTES = H(
    "0000"                              # version 0
    "00000000000003e8"                  # ProducerId 1000
    "0003"                              # ProducerEpoch 3
    "0000ea60"                          # TransactionTimeoutMs 60000
    "01"                                # TransactionStatus Ongoing
    "00000001"                          # TransactionPartitions: 1 entry
    "0006" "6f7264657273"               #   Topic "orders"
    "00000002" "00000000" "00000002"    #   PartitionIds [0, 2]
    "0000018bcfe56800"                  # TransactionLastUpdateTimestampMs
    "0000018bcfe56418")                 # TransactionStartTimestampMs


def test_value_v0_bytes():
    assert txn_log.encode_value(ONGOING_V0, 0) == ONGOING_V0_BYTES
    assert txn_log.decode_value(ONGOING_V0_BYTES) == ONGOING_V0
    assert len(txn_log.encode_value(
        TransactionLogValue(1, 0, 1, 0, None, 0, -1), 0)) == 37   # KAFKA_FACTS §6.2 fixed part


def test_value_v0_empty_has_null_partitions():
    empty = TransactionLogValue(7, 0, 60000, 0, None, TS_UPDATE, -1)
    expected = H("0000" "0000000000000007" "0000" "0000ea60" "00" "ffffffff"
                 "0000018bcfe56800" "ffffffffffffffff")
    assert txn_log.encode_value(empty, 0) == expected
    assert txn_log.decode_value(expected) == empty


PREPARE_V1 = TransactionLogValue(
    producer_id=1000, producer_epoch=4, transaction_timeout_ms=60000, transaction_status=2,
    transaction_partitions=(("orders", (0, 2)),),
    transaction_last_update_timestamp_ms=TS_UPDATE, transaction_start_timestamp_ms=TS_START,
    next_producer_id=2000, client_transaction_version=2)

PREPARE_V1_BYTES = H(
    "0001"                              # version 1 (flexible)
    "00000000000003e8"                  # ProducerId 1000
    "0004"                              # ProducerEpoch 4
    "0000ea60"                          # TransactionTimeoutMs 60000
    "02"                                # TransactionStatus PrepareCommit
    "02"                                # compact array: 1 entry (+1)
    "07" "6f7264657273"                 #   compact string "orders" (6 + 1)
    "03" "00000000" "00000002"          #   compact array [0, 2] (2 + 1)
    "00"                                #   entry tagged fields: none
    "0000018bcfe56800"                  # TransactionLastUpdateTimestampMs
    "0000018bcfe56418"                  # TransactionStartTimestampMs
    "02"                                # 2 tagged fields
    "01" "08" "00000000000007d0"        #   tag 1 NextProducerId 2000
    "02" "02" "0002")                   #   tag 2 ClientTransactionVersion 2


def test_value_v1_bytes():
    assert txn_log.encode_value(PREPARE_V1, 1) == PREPARE_V1_BYTES
    assert txn_log.decode_value(PREPARE_V1_BYTES) == PREPARE_V1


def test_value_v1_defaults_are_not_written():
    empty = TransactionLogValue(7, 0, 60000, 0, None, TS_UPDATE, -1)
    expected = H("0001" "0000000000000007" "0000" "0000ea60" "00" "00"
                 "0000018bcfe56800" "ffffffffffffffff" "00")
    assert txn_log.encode_value(empty, 1) == expected
    assert txn_log.decode_value(expected) == empty


def test_value_v1_previous_producer_id_tag():
    value = TransactionLogValue(8, 0, 1000, 0, None, 5, -1, previous_producer_id=7)
    data = txn_log.encode_value(value, 1)
    assert data.endswith(H("01" "00" "08" "0000000000000007"))
    assert txn_log.decode_value(data) == value


def test_value_v1_unknown_tags_are_skipped():
    empty = TransactionLogValue(7, 0, 60000, 0, None, TS_UPDATE, -1,
                                client_transaction_version=2)
    data = H("0001" "0000000000000007" "0000" "0000ea60" "00" "00"
             "0000018bcfe56800" "ffffffffffffffff"
             "02" "02" "02" "0002" "09" "03" "aabbcc")
    assert txn_log.decode_value(data) == empty


def test_value_v0_drops_tagged_fields():
    data = txn_log.encode_value(PREPARE_V1, 0)
    decoded = txn_log.decode_value(data)
    assert decoded.next_producer_id == -1 and decoded.client_transaction_version == 0
    assert decoded.transaction_partitions == PREPARE_V1.transaction_partitions


def test_tombstone():
    assert txn_log.decode_value(None) is None


@pytest.mark.parametrize("data", [
    ONGOING_V0_BYTES[:-1],                                  # truncated
    ONGOING_V0_BYTES + b"\x00",                             # left-over byte
    H("0002") + ONGOING_V0_BYTES[2:],                       # unknown version
    H("ffff") + ONGOING_V0_BYTES[2:],                       # negative version
    ONGOING_V0_BYTES[:17] + H("fffffffe") + ONGOING_V0_BYTES[21:],   # count -2
    PREPARE_V1_BYTES[:-3] + H("03") + PREPARE_V1_BYTES[-2:],         # tag 2 with wrong size
    PREPARE_V1_BYTES[:-1],                                  # truncated tag
    PREPARE_V1_BYTES + H("ffffffffff"),                     # garbage after the tags
])
def test_value_corrupt(data):
    with pytest.raises(CorruptRecord):
        txn_log.decode_value(data)


def test_unknown_encode_version():
    with pytest.raises(ValueError):
        txn_log.encode_value(ONGOING_V0, 2)


def test_group_partitions_sorts_and_groups():
    assert txn_log.group_partitions([("b", 2), ("a", 1), ("b", 0)]) == \
        (("a", (1,)), ("b", (0, 2)))


int64 = st.integers(-(1 << 63), (1 << 63) - 1)
int32 = st.integers(-(1 << 31), (1 << 31) - 1)
int16 = st.integers(-(1 << 15), (1 << 15) - 1)
topics = st.text(min_size=1, max_size=30)
partitions = st.none() | st.lists(
    st.tuples(topics, st.lists(st.integers(0, (1 << 31) - 1), max_size=5).map(tuple)),
    max_size=5).map(tuple)


@st.composite
def values(draw, flexible: bool):
    tags = dict(previous_producer_id=draw(int64), next_producer_id=draw(int64),
                client_transaction_version=draw(int16)) if flexible else {}
    return TransactionLogValue(draw(int64), draw(int16), draw(int32), draw(st.integers(0, 7)),
                               draw(partitions), draw(int64), draw(int64), **tags)


@given(values(flexible=False))
def test_round_trip_v0(value):
    assert txn_log.decode_value(txn_log.encode_value(value, 0)) == value


@given(values(flexible=True))
def test_round_trip_v1(value):
    assert txn_log.decode_value(txn_log.encode_value(value, 1)) == value


@given(st.text(min_size=1, max_size=200))
def test_key_round_trip(transactional_id):
    assert txn_log.decode_key(txn_log.encode_key(transactional_id)) == transactional_id


@given(st.binary(max_size=80))
def test_decoding_garbage_raises_only_corrupt_record(data):
    try:
        txn_log.decode_value(data)
    except CorruptRecord:
        pass
