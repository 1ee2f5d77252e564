"""`__consumer_offsets` record schemas: keys and values as Kafka writes them, byte for byte.

Every key and value starts with an int16 version. The key's version picks the record type
(group-coordinator/src/main/resources/common/message/*.json, KAFKA_FACTS.md section 7):

    key version 0, 1   OffsetCommitKey     group string, topic string, partition int32
                       (the two versions share one layout; brokers write version 1)
    key version 2      GroupMetadataKey    group string
    key version >= 3   KIP-848 / share-group records: not ours; decode_key returns UnknownKey

OffsetCommitValue (value versions 0-4):

    v0, v2   offset int64, metadata string, commitTimestamp int64
    v1       offset int64, metadata string, commitTimestamp int64, expireTimestamp int64
    v3       offset int64, leaderEpoch int32, metadata string, commitTimestamp int64
    v4       v3 in the flexible encoding: metadata is a compact string (unsigned varint length
             + 1) and a tagged-field section (unsigned varint count) ends the value

Writers emit v3, or v1 when an explicit expire timestamp is given (MetadataVersion
.offsetCommitValueVersion). A null value (tombstone) deletes the offset.

GroupMetadataValue (the classic group's membership) is recognized by its key and never
decoded: logstore does not persist group membership (txn/group_coordinator.py says why).

Primitive types are Kafka's: big-endian fixed-width integers; `string` = int16 byte length +
UTF-8 (non-nullable: a negative length is an error); `nullable string` = -1 for null;
`bytes` = int32 length; arrays = int32 count. `Writer` and `Reader` implement them and are
shared with txn/consumer_protocol.py. Bytes after the last field of the version read are
ignored (Kafka reads newer records with the fields it knows).

Errors: malformed bytes raise CorruptRecord; a value version above 4 raises
UnsupportedVersion (Kafka's loader refuses unknown value versions too).

Thread-safety: stateless functions and immutable values.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from logstore.errors import CorruptRecord
from txn.errors import UnsupportedVersion

OFFSET_COMMIT_KEY_VERSIONS = (0, 1)
OFFSET_COMMIT_KEY_VERSION = 1          # what brokers write
GROUP_METADATA_KEY_VERSION = 2
OFFSET_COMMIT_VALUE_MAX_VERSION = 4
OFFSET_COMMIT_VALUE_VERSION = 3        # written without an expire timestamp
OFFSET_COMMIT_VALUE_EXPIRE_VERSION = 1  # written with one
FLEXIBLE_VALUE_VERSION = 4
NO_LEADER_EPOCH = -1
NO_TIMESTAMP = -1
STRING_MAX_BYTES = 0x7FFF
NULL_LENGTH = -1

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


# ------------------------------------------------------------------------------------------------
# Primitive types


class Writer:
    """Appends Kafka primitive types to a bytearray."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def int16(self, value: int) -> Writer:
        self.buf += _I16.pack(value)
        return self

    def int32(self, value: int) -> Writer:
        self.buf += _I32.pack(value)
        return self

    def int64(self, value: int) -> Writer:
        self.buf += _I64.pack(value)
        return self

    def uvarint(self, value: int) -> Writer:
        if value < 0:
            raise ValueError(f"unsigned varint cannot hold {value}")
        while value >= 0x80:
            self.buf.append((value & 0x7F) | 0x80)
            value >>= 7
        self.buf.append(value)
        return self

    def string(self, value: str) -> Writer:
        if value is None:
            raise ValueError("a non-nullable string field got None")
        return self._string_bytes(value.encode("utf-8"))

    def nullable_string(self, value: str | None) -> Writer:
        if value is None:
            return self.int16(NULL_LENGTH)
        return self.string(value)

    def _string_bytes(self, data: bytes) -> Writer:
        if len(data) > STRING_MAX_BYTES:
            raise ValueError(f"string of {len(data)} bytes is longer than the maximum "
                             f"{STRING_MAX_BYTES}")
        self.int16(len(data))
        self.buf += data
        return self

    def compact_string(self, value: str) -> Writer:
        data = value.encode("utf-8")
        self.uvarint(len(data) + 1)
        self.buf += data
        return self

    def nullable_bytes(self, value: bytes | None) -> Writer:
        if value is None:
            return self.int32(NULL_LENGTH)
        self.int32(len(value))
        self.buf += value
        return self

    def array(self, items, write_item) -> Writer:
        self.int32(len(items))
        for item in items:
            write_item(self, item)
        return self

    def getvalue(self) -> bytes:
        return bytes(self.buf)


class Reader:
    """Reads Kafka primitive types from bytes; `error` (an exception class) for short or
    malformed input, with `what` naming the structure in the message."""

    __slots__ = ("data", "pos", "what", "error")

    def __init__(self, data, what: str, error: type[Exception] = CorruptRecord):
        if data is None:
            raise error(f"{what}: no bytes (null)")
        self.data = bytes(data)
        self.pos = 0
        self.what = what
        self.error = error

    def _take(self, size: int, field: str) -> bytes:
        end = self.pos + size
        if size < 0 or end > len(self.data):
            raise self.error(f"{self.what}: {field} needs {size} bytes at position {self.pos}, "
                             f"{len(self.data) - self.pos} left")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def int16(self, field: str) -> int:
        return _I16.unpack(self._take(2, field))[0]

    def int32(self, field: str) -> int:
        return _I32.unpack(self._take(4, field))[0]

    def int64(self, field: str) -> int:
        return _I64.unpack(self._take(8, field))[0]

    def uvarint(self, field: str) -> int:
        value = shift = 0
        while True:
            byte = self._take(1, field)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 28:
                raise self.error(f"{self.what}: {field} is a varint longer than 5 bytes")

    def _utf8(self, data: bytes, field: str) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(f"{self.what}: {field} is not valid UTF-8 ({exc})") from None

    def string(self, field: str) -> str:
        size = self.int16(field)
        if size < 0:
            raise self.error(f"{self.what}: non-nullable string {field} has length {size}")
        return self._utf8(self._take(size, field), field)

    def nullable_string(self, field: str) -> str | None:
        size = self.int16(field)
        if size < 0:
            return None
        return self._utf8(self._take(size, field), field)

    def compact_string(self, field: str) -> str:
        size = self.uvarint(field) - 1
        if size < 0:
            raise self.error(f"{self.what}: non-nullable compact string {field} is null")
        return self._utf8(self._take(size, field), field)

    def nullable_bytes(self, field: str) -> bytes | None:
        size = self.int32(field)
        if size < 0:
            return None
        return self._take(size, field)

    def array(self, field: str, read_item) -> list:
        count = self.int32(field)
        if count < 0:
            raise self.error(f"{self.what}: non-nullable array {field} has length {count}")
        if count > len(self.data) - self.pos:        # every item takes at least one byte
            raise self.error(f"{self.what}: array {field} claims {count} items, "
                             f"{len(self.data) - self.pos} bytes left")
        return [read_item(self) for _ in range(count)]

    def skip_tagged_fields(self) -> None:
        for _ in range(self.uvarint("tagged field count")):
            self.uvarint("tag")
            self._take(self.uvarint("tagged field size"), "tagged field")


# ------------------------------------------------------------------------------------------------
# Keys


@dataclass(frozen=True)
class OffsetCommitKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True)
class GroupMetadataKey:
    group: str


@dataclass(frozen=True)
class UnknownKey:
    """A key of a record type this module does not know (key version >= 3): skip the record
    (KIP-915: coordinators ignore record types they do not know)."""

    version: int


def encode_offset_commit_key(group: str, topic: str, partition: int,
                             version: int = OFFSET_COMMIT_KEY_VERSION) -> bytes:
    if version not in OFFSET_COMMIT_KEY_VERSIONS:
        raise ValueError(f"OffsetCommitKey has versions 0 and 1, not {version}")
    return (Writer().int16(version).string(group).string(topic).int32(partition)).getvalue()


def encode_group_metadata_key(group: str) -> bytes:
    return Writer().int16(GROUP_METADATA_KEY_VERSION).string(group).getvalue()


def decode_key(data) -> OffsetCommitKey | GroupMetadataKey | UnknownKey:
    reader = Reader(data, "__consumer_offsets key")
    version = reader.int16("version")
    if version < 0:
        raise CorruptRecord(f"__consumer_offsets key has a negative version {version}")
    if version in OFFSET_COMMIT_KEY_VERSIONS:
        return OffsetCommitKey(reader.string("group"), reader.string("topic"),
                               reader.int32("partition"))
    if version == GROUP_METADATA_KEY_VERSION:
        return GroupMetadataKey(reader.string("group"))
    return UnknownKey(version)


# ------------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class OffsetCommitValue:
    """One committed offset. expire_timestamp is None unless the value is version 1 (or
    written with one); leader_epoch is -1 for versions below 3."""

    offset: int
    metadata: str = ""
    commit_timestamp: int = NO_TIMESTAMP
    leader_epoch: int = NO_LEADER_EPOCH
    expire_timestamp: int | None = None

    def version(self) -> int:
        """The version a broker writes this value with."""
        if self.expire_timestamp is not None:
            return OFFSET_COMMIT_VALUE_EXPIRE_VERSION
        return OFFSET_COMMIT_VALUE_VERSION


def encode_offset_commit_value(value: OffsetCommitValue, version: int | None = None) -> bytes:
    """The value's bytes at `version` (default: value.version()). Fields a version does not
    hold are dropped (leaderEpoch below v3, expireTimestamp outside v1)."""
    if version is None:
        version = value.version()
    if not 0 <= version <= OFFSET_COMMIT_VALUE_MAX_VERSION:
        raise ValueError(f"OffsetCommitValue has versions 0-4, not {version}")
    out = Writer().int16(version).int64(value.offset)
    if version >= 3:
        out.int32(value.leader_epoch)
    if version >= FLEXIBLE_VALUE_VERSION:
        out.compact_string(value.metadata)
    else:
        out.string(value.metadata)
    out.int64(value.commit_timestamp)
    if version == 1:
        expire = value.expire_timestamp
        out.int64(NO_TIMESTAMP if expire is None else expire)
    if version >= FLEXIBLE_VALUE_VERSION:
        out.uvarint(0)                  # no tagged fields
    return out.getvalue()


def decode_offset_commit_value(data) -> OffsetCommitValue | None:
    """The value, or None for a tombstone (data None)."""
    if data is None:
        return None
    reader = Reader(data, "OffsetCommitValue")
    version = reader.int16("version")
    if version < 0:
        raise CorruptRecord(f"OffsetCommitValue has a negative version {version}")
    if version > OFFSET_COMMIT_VALUE_MAX_VERSION:
        raise UnsupportedVersion(f"OffsetCommitValue version {version} is newer than "
                                 f"{OFFSET_COMMIT_VALUE_MAX_VERSION}, the newest known")
    offset = reader.int64("offset")
    leader_epoch = reader.int32("leaderEpoch") if version >= 3 else NO_LEADER_EPOCH
    if version >= FLEXIBLE_VALUE_VERSION:
        metadata = reader.compact_string("metadata")
    else:
        metadata = reader.string("metadata")
    commit_timestamp = reader.int64("commitTimestamp")
    expire = reader.int64("expireTimestamp") if version == 1 else NO_TIMESTAMP
    if version >= FLEXIBLE_VALUE_VERSION:
        reader.skip_tagged_fields()
    return OffsetCommitValue(offset, metadata, commit_timestamp, leader_epoch,
                             None if expire == NO_TIMESTAMP else expire)
