"""`__consumer_offsets` keys and values against bytes written out by hand from Kafka's schema
tables (OffsetCommitKey.json, OffsetCommitValue.json, GroupMetadataKey.json): int16 version
prefix, int16-length strings, big-endian integers, v4's compact string and tagged fields."""

from __future__ import annotations

import pytest

from logstore.errors import CorruptRecord
from txn import offsets_log as ol
from txn.errors import UnsupportedVersion


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", "").replace("\n", ""))


OFFSET_1234 = "00 00 00 00 00 00 04 d2"          # int64 1234
TS = "00 00 01 8b cf e5 68 00"                     # int64 1700000000000
EXPIRE = "00 00 01 8b d5 0b c4 00"                 # int64 1700000000000 + one day
META_AB = "00 02 61 62"                            # string "ab"


def test_int64_constants_are_what_they_say():
    assert int.from_bytes(h(TS), "big") == 1_700_000_000_000
    assert int.from_bytes(h(EXPIRE), "big") == 1_700_086_400_000


# -- keys -----------------------------------------------------------------------------------

def test_offset_commit_key_v1_bytes():
    expected = h("0001" "0001 67" "0002 7470" "00000003")        # "g", "tp", 3
    assert ol.encode_offset_commit_key("g", "tp", 3) == expected
    assert ol.decode_key(expected) == ol.OffsetCommitKey("g", "tp", 3)


def test_offset_commit_key_v0_has_the_same_layout():
    expected = h("0000" "0001 67" "0002 7470" "7fffffff")
    assert ol.encode_offset_commit_key("g", "tp", 2**31 - 1, version=0) == expected
    assert ol.decode_key(expected) == ol.OffsetCommitKey("g", "tp", 2**31 - 1)
    with pytest.raises(ValueError):
        ol.encode_offset_commit_key("g", "tp", 0, version=2)


def test_key_strings_are_utf8_with_byte_lengths():
    group = "grüppe"                                   # ü is two bytes
    expected = h("0001" "0007") + group.encode() + h("0000" "00000000")
    assert ol.encode_offset_commit_key(group, "", 0) == expected
    assert ol.decode_key(expected) == ol.OffsetCommitKey(group, "", 0)


def test_group_metadata_key_v2_bytes():
    expected = h("0002" "0005") + b"group"
    assert ol.encode_group_metadata_key("group") == expected
    assert ol.decode_key(expected) == ol.GroupMetadataKey("group")


@pytest.mark.parametrize("version", [3, 4, 5, 17])
def test_newer_key_types_are_recognized_as_unknown(version):
    assert ol.decode_key(version.to_bytes(2, "big") + b"\x00\x01x") == ol.UnknownKey(version)


@pytest.mark.parametrize("data", [b"", h("00"), h("0001 0005 6162"), h("0001 0001 67 0001 74"),
                                  h("ffff 0001 67"), h("0001 ffff"), None,
                                  h("0001 0002 c328 0000 00000000")])
def test_malformed_keys_raise_corrupt_record(data):
    with pytest.raises(CorruptRecord):
        ol.decode_key(data)


def test_trailing_key_bytes_are_ignored():
    data = h("0001" "0001 67" "0001 74" "00000001" "dead")
    assert ol.decode_key(data) == ol.OffsetCommitKey("g", "t", 1)


# -- values ---------------------------------------------------------------------------------

def test_value_v3_bytes():
    value = ol.OffsetCommitValue(1234, "ab", 1_700_000_000_000, leader_epoch=7)
    expected = h("0003" + OFFSET_1234 + "00000007" + META_AB + TS)
    assert value.version() == 3
    assert ol.encode_offset_commit_value(value) == expected
    assert ol.decode_offset_commit_value(expected) == value


def test_value_v3_default_leader_epoch_is_minus_one():
    expected = h("0003" + OFFSET_1234 + "ffffffff" + "0000" + TS)
    value = ol.OffsetCommitValue(1234, "", 1_700_000_000_000)
    assert ol.encode_offset_commit_value(value) == expected
    assert ol.decode_offset_commit_value(expected) == value


def test_value_v1_is_written_when_an_expire_timestamp_is_given():
    value = ol.OffsetCommitValue(1234, "ab", 1_700_000_000_000,
                                 expire_timestamp=1_700_086_400_000)
    expected = h("0001" + OFFSET_1234 + META_AB + TS + EXPIRE)
    assert value.version() == 1
    assert ol.encode_offset_commit_value(value) == expected
    assert ol.decode_offset_commit_value(expected) == value


def test_value_v1_with_minus_one_expire_reads_as_no_expire():
    data = h("0001" + OFFSET_1234 + META_AB + TS + "ffffffffffffffff")
    assert ol.decode_offset_commit_value(data).expire_timestamp is None


@pytest.mark.parametrize("version", [0, 2])
def test_value_v0_and_v2_layout(version):
    data = h(f"000{version}" + OFFSET_1234 + META_AB + TS)
    value = ol.decode_offset_commit_value(data)
    assert value == ol.OffsetCommitValue(1234, "ab", 1_700_000_000_000)
    assert value.leader_epoch == -1
    leader_epoch_dropped = ol.OffsetCommitValue(1234, "ab", 1_700_000_000_000, leader_epoch=9)
    assert ol.encode_offset_commit_value(leader_epoch_dropped, version) == data


def test_value_v4_flexible_bytes():
    value = ol.OffsetCommitValue(1234, "ab", 1_700_000_000_000, leader_epoch=7)
    expected = h("0004" + OFFSET_1234 + "00000007" + "03 6162" + TS + "00")
    assert ol.encode_offset_commit_value(value, 4) == expected
    assert ol.decode_offset_commit_value(expected) == value


def test_value_v4_long_metadata_takes_a_two_byte_varint():
    metadata = "m" * 200                                  # 201 = 0xc9 -> c9 01
    expected = h("0004" + OFFSET_1234 + "ffffffff" + "c901") + metadata.encode() + h(TS + "00")
    value = ol.OffsetCommitValue(1234, metadata, 1_700_000_000_000)
    assert ol.encode_offset_commit_value(value, 4) == expected
    assert ol.decode_offset_commit_value(expected) == value


def test_value_v4_unknown_tagged_fields_are_skipped():
    tagged = "02" "00 03 aabbcc" "05 00"                  # two fields: tag 0 (3 bytes), tag 5
    data = h("0004" + OFFSET_1234 + "00000001" + "01" + TS + tagged)
    assert ol.decode_offset_commit_value(data) == ol.OffsetCommitValue(
        1234, "", 1_700_000_000_000, leader_epoch=1)


def test_tombstone_is_none():
    assert ol.decode_offset_commit_value(None) is None


def test_newer_value_version_is_unsupported():
    with pytest.raises(UnsupportedVersion):
        ol.decode_offset_commit_value(h("0005" + OFFSET_1234 + "00000001" + "01" + TS + "00"))
    with pytest.raises(ValueError):
        ol.encode_offset_commit_value(ol.OffsetCommitValue(1), 5)


@pytest.mark.parametrize("data", [
    b"", h("0003"), h("0003" + OFFSET_1234), h("0003" + OFFSET_1234 + "00000001 0005 61"),
    h("fffd" + OFFSET_1234), h("0003" + OFFSET_1234 + "00000001 ffff" + TS),
    h("0004" + OFFSET_1234 + "00000001" + "00" + TS + "00"),          # null compact string
    h("0004" + OFFSET_1234 + "00000001" + "01" + TS + "01 00 05 aa"),  # short tagged field
    h("0004" + OFFSET_1234 + "00000001" + "ffffffffff01"),             # over-long varint
])
def test_malformed_values_raise_corrupt_record(data):
    with pytest.raises(CorruptRecord):
        ol.decode_offset_commit_value(data)


def test_metadata_longer_than_a_string_can_hold_is_refused():
    with pytest.raises(ValueError):
        ol.encode_offset_commit_value(ol.OffsetCommitValue(0, "x" * 32768))


def test_writer_and_reader_primitives_round_trip():
    out = (ol.Writer().int16(-2).int32(-3).int64(2**62).uvarint(300).nullable_string(None)
           .nullable_bytes(None).nullable_bytes(b"xy").array(["a", "b"], lambda w, s: w.string(s)))
    data = out.getvalue()
    assert data == h("fffe fffffffd 4000000000000000 ac02 ffff ffffffff 00000002 7879"
                     "00000002 0001 61 0001 62")
    r = ol.Reader(data, "test")
    assert (r.int16("a"), r.int32("b"), r.int64("c"), r.uvarint("d")) == (-2, -3, 2**62, 300)
    assert r.nullable_string("e") is None and r.nullable_bytes("f") is None
    assert r.nullable_bytes("g") == b"xy"
    assert r.array("h", lambda rd: rd.string("s")) == ["a", "b"]
    with pytest.raises(CorruptRecord):
        r.int16("past the end")
