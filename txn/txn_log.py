"""`__transaction_state` record schemas: Kafka's TransactionLogKey and TransactionLogValue.

Byte layouts (big-endian; `transaction-coordinator/.../TransactionLog{Key,Value}.json`):

Key (version 0 only, non-flexible)::

    int16 version = 0 | string TransactionalId (int16 length + UTF-8)

Value version 0 (non-flexible; Kafka writes it while transaction.version < 1)::

    int16 version = 0
    int64 ProducerId | int16 ProducerEpoch | int32 TransactionTimeoutMs | int8 TransactionStatus
    TransactionPartitions: int32 count (-1 = null, written in Empty), per entry
        string Topic (int16 length) | int32 count + int32 PartitionIds
    int64 TransactionLastUpdateTimestampMs | int64 TransactionStartTimestampMs

Value version 1 (flexible): the same fields in the same order, but strings and arrays are
"compact" (unsigned varint length + 1; 0 = null), each partition entry ends with an (empty)
tagged-field section, and the value ends with a tagged-field section::

    tag 0 PreviousProducerId int64 (default -1)
    tag 1 NextProducerId     int64 (default -1)
    tag 2 ClientTransactionVersion int16 (default 0)

A tagged-field section is: uvarint count, then per field (ascending tags) uvarint tag, uvarint
size, data. A field equal to its default is not written, as Kafka's generated code does.
Unknown tags are skipped when reading (forward compatibility). A null value (tombstone) means
the transactional id expired (state Dead).

Decoding is strict: a truncated buffer, an unknown version, an impossible length or bytes left
over raise `logstore.errors.CorruptRecord` naming the field and the byte position.

Thread-safety: pure functions over immutable values.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from logstore.errors import CorruptRecord

KEY_VERSION = 0
VALUE_VERSION_CLASSIC = 0            # non-flexible
VALUE_VERSION_FLEXIBLE = 1           # compact encodings + tagged fields
VALUE_VERSIONS = (VALUE_VERSION_CLASSIC, VALUE_VERSION_FLEXIBLE)

TAG_PREVIOUS_PRODUCER_ID = 0
TAG_NEXT_PRODUCER_ID = 1
TAG_CLIENT_TRANSACTION_VERSION = 2

NO_PRODUCER_ID = -1
INT16_MAX = 0x7FFF
UVARINT_MAX_BYTES = 5                # an unsigned 32-bit varint

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")

# The fixed part of a value before the partitions: ProducerId, ProducerEpoch, TimeoutMs, Status.
_HEAD = struct.Struct(">qhib")
# The fixed part after the partitions: LastUpdateTimestampMs, StartTimestampMs.
_TAIL = struct.Struct(">qq")

Partitions = tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True)
class TransactionLogValue:
    """One decoded value. `transaction_partitions` is None when written as null (Empty)."""

    producer_id: int
    producer_epoch: int
    transaction_timeout_ms: int
    transaction_status: int
    transaction_partitions: Partitions | None
    transaction_last_update_timestamp_ms: int
    transaction_start_timestamp_ms: int
    previous_producer_id: int = NO_PRODUCER_ID       # tag 0, v1 only
    next_producer_id: int = NO_PRODUCER_ID           # tag 1, v1 only
    client_transaction_version: int = 0              # tag 2, v1 only


def group_partitions(partitions) -> Partitions:
    """(topic, partition) pairs as the schema's per-topic entries, topics and ids sorted."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    return tuple((topic, tuple(sorted(ids))) for topic, ids in sorted(by_topic.items()))


# -- encoding -------------------------------------------------------------------------------

def _uvarint(n: int) -> bytes:
    if n < 0:
        raise ValueError(f"unsigned varint of a negative number {n}")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _string(text: str, flexible: bool, what: str) -> bytes:
    data = text.encode("utf-8")
    if len(data) > INT16_MAX:
        raise ValueError(f"{what} is {len(data)} bytes of UTF-8; at most {INT16_MAX} fit")
    return (_uvarint(len(data) + 1) if flexible else _I16.pack(len(data))) + data


def encode_key(transactional_id: str) -> bytes:
    """TransactionLogKey v0 with its int16 version prefix."""
    if not isinstance(transactional_id, str) or not transactional_id:
        raise ValueError(f"a transactional id must be a non-empty str, got {transactional_id!r}")
    return _I16.pack(KEY_VERSION) + _string(transactional_id, False, "transactional id")


def _encode_partitions(partitions: Partitions | None, flexible: bool) -> bytes:
    if partitions is None:
        return _uvarint(0) if flexible else _I32.pack(-1)
    parts = [_uvarint(len(partitions) + 1) if flexible else _I32.pack(len(partitions))]
    for topic, ids in partitions:
        parts.append(_string(topic, flexible, "topic name"))
        parts.append(_uvarint(len(ids) + 1) if flexible else _I32.pack(len(ids)))
        parts.extend(_I32.pack(i) for i in ids)
        if flexible:
            parts.append(_uvarint(0))                # the entry's empty tagged fields
    return b"".join(parts)


def _encode_tags(value: TransactionLogValue) -> bytes:
    fields = []
    if value.previous_producer_id != NO_PRODUCER_ID:
        fields.append((TAG_PREVIOUS_PRODUCER_ID, _I64.pack(value.previous_producer_id)))
    if value.next_producer_id != NO_PRODUCER_ID:
        fields.append((TAG_NEXT_PRODUCER_ID, _I64.pack(value.next_producer_id)))
    if value.client_transaction_version != 0:
        fields.append((TAG_CLIENT_TRANSACTION_VERSION,
                       _I16.pack(value.client_transaction_version)))
    parts = [_uvarint(len(fields))]
    for tag, data in fields:
        parts += [_uvarint(tag), _uvarint(len(data)), data]
    return b"".join(parts)


def encode_value(value: TransactionLogValue, version: int) -> bytes:
    """TransactionLogValue at `version` (0 or 1) with its int16 version prefix. Version 0 has no
    tagged fields: previous/next producer id and the client version are dropped."""
    if version not in VALUE_VERSIONS:
        raise ValueError(f"TransactionLogValue version must be one of {VALUE_VERSIONS}, "
                         f"got {version!r}")
    flexible = version == VALUE_VERSION_FLEXIBLE
    parts = [_I16.pack(version),
             _HEAD.pack(value.producer_id, value.producer_epoch, value.transaction_timeout_ms,
                        value.transaction_status),
             _encode_partitions(value.transaction_partitions, flexible),
             _TAIL.pack(value.transaction_last_update_timestamp_ms,
                        value.transaction_start_timestamp_ms)]
    if flexible:
        parts.append(_encode_tags(value))
    return b"".join(parts)


# -- decoding -------------------------------------------------------------------------------

class _Reader:
    """A cursor over one buffer; every read checks the bytes are there."""

    def __init__(self, data, what: str):
        self.data = bytes(data)
        self.pos = 0
        self.what = what

    def fail(self, message: str) -> CorruptRecord:
        return CorruptRecord(f"{self.what}: {message} at byte {self.pos} "
                             f"of {len(self.data)}")

    def take(self, n: int, field: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"{field} needs {n} bytes, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: struct.Struct, field: str):
        return fmt.unpack(self.take(fmt.size, field))

    def uvarint(self, field: str) -> int:
        result = shift = 0
        for _ in range(UVARINT_MAX_BYTES):
            byte = self.take(1, field)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
        raise self.fail(f"{field} varint is longer than {UVARINT_MAX_BYTES} bytes")

    def array_length(self, flexible: bool, field: str, nullable: bool) -> int | None:
        """int32 count (classic) or uvarint count + 1 (compact); None for a null array."""
        n = self.uvarint(field) - 1 if flexible else self.unpack(_I32, field)[0]
        if n == -1 and nullable:
            return None
        if n < 0:
            raise self.fail(f"{field} is {n}")
        return n

    def string(self, flexible: bool, field: str) -> str:
        """A non-null string: int16 length (classic) or uvarint length + 1 (compact)."""
        n = self.uvarint(field) - 1 if flexible else self.unpack(_I16, field)[0]
        if n < 0:
            raise self.fail(f"{field} length is {n}")
        raw = self.take(n, field)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{field} is not UTF-8") from None

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise self.fail(f"{len(self.data) - self.pos} bytes left over")


def decode_key(data) -> str | None:
    """The transactional id of a key, or None when the key version is not 0 (a record type
    this coordinator does not know; the loader skips it)."""
    if data is None:
        raise CorruptRecord("__transaction_state record without a key")
    reader = _Reader(data, "TransactionLogKey")
    (version,) = reader.unpack(_I16, "key version")
    if version != KEY_VERSION:
        return None
    transactional_id = reader.string(False, "TransactionalId")
    reader.finish()
    return transactional_id


def _decode_partitions(reader: _Reader, flexible: bool) -> Partitions | None:
    count = reader.array_length(flexible, "TransactionPartitions count", nullable=True)
    if count is None:
        return None
    entries = []
    for _ in range(count):
        topic = reader.string(flexible, "Topic")
        n = reader.array_length(flexible, "PartitionIds count", nullable=False)
        ids = struct.unpack(f">{n}i", reader.take(4 * n, "PartitionIds"))
        if flexible:
            _skip_tags(reader, "PartitionsSchema")
        entries.append((topic, ids))
    return tuple(entries)


def _skip_tags(reader: _Reader, where: str) -> None:
    for _ in range(reader.uvarint(f"{where} tag count")):
        reader.uvarint(f"{where} tag")
        reader.take(reader.uvarint(f"{where} tag size"), f"{where} tagged field")


def _decode_tags(reader: _Reader) -> dict[str, int]:
    found: dict[str, int] = {}
    last_tag = -1
    for _ in range(reader.uvarint("tag count")):
        tag = reader.uvarint("tag")
        if tag <= last_tag:
            raise reader.fail(f"tag {tag} follows tag {last_tag} (tags must ascend)")
        last_tag = tag
        size = reader.uvarint(f"tag {tag} size")
        data = reader.take(size, f"tag {tag}")
        expected = {TAG_PREVIOUS_PRODUCER_ID: 8, TAG_NEXT_PRODUCER_ID: 8,
                    TAG_CLIENT_TRANSACTION_VERSION: 2}.get(tag)
        if expected is None:
            continue                                  # unknown tag: skipped
        if size != expected:
            raise reader.fail(f"tag {tag} has {size} bytes, expected {expected}")
        if tag == TAG_PREVIOUS_PRODUCER_ID:
            found["previous_producer_id"] = _I64.unpack(data)[0]
        elif tag == TAG_NEXT_PRODUCER_ID:
            found["next_producer_id"] = _I64.unpack(data)[0]
        else:
            found["client_transaction_version"] = _I16.unpack(data)[0]
    return found


def decode_value(data) -> TransactionLogValue | None:
    """A value of version 0 or 1; None for a tombstone (data is None)."""
    if data is None:
        return None
    reader = _Reader(data, "TransactionLogValue")
    (version,) = reader.unpack(_I16, "value version")
    if version not in VALUE_VERSIONS:
        raise reader.fail(f"unknown value version {version}")
    flexible = version == VALUE_VERSION_FLEXIBLE
    pid, epoch, timeout_ms, status = reader.unpack(_HEAD, "value header")
    partitions = _decode_partitions(reader, flexible)
    last_update, start = reader.unpack(_TAIL, "timestamps")
    tags = _decode_tags(reader) if flexible else {}
    reader.finish()
    return TransactionLogValue(pid, epoch, timeout_ms, status, partitions, last_update, start,
                               **tags)
