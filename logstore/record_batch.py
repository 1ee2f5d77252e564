"""Kafka v2 record batches in Python: views, record decoding, building, and append validation.

Format (KAFKA_FACTS.md 1.1-1.4, 2; all big-endian):

  off size field                     off size field
    0   8  baseOffset                 35   8  maxTimestamp
    8   4  length (= size - 12)       43   8  producerId
   12   4  partitionLeaderEpoch       51   2  producerEpoch
   16   1  magic (2)                  53   4  baseSequence
   17   4  crc (CRC-32C of [21, end)) 57   4  recordsCount
   21   2  attributes                 61   ..  records, or one compressed stream of them
   23   4  lastOffsetDelta
   27   8  baseTimestamp

  attributes: bits 0-2 codec (logstore.compression), 3 timestampType (1 = LOG_APPEND_TIME),
              4 isTransactional, 5 isControl, 6 hasDeleteHorizonMs; bits 7-15 are 0
  record:     varint length | int8 attributes | varlong timestampDelta | varint offsetDelta |
              varint keyLength (-1 null) | key | varint valueLength (-1 null) | value |
              varint headersCount | (varint keyLength | utf-8 key | varint valueLength | value)*

Invariants of a batch a client may append (`validate_for_append`, Kafka's
UnifiedLog.analyzeAndValidateRecords + LogValidator.validateBatch): exactly one whole batch,
magic 2, baseOffset 0, size <= max.message.bytes, CRC valid, recordsCount > 0 and equal to
lastOffsetDelta + 1, not a control batch, baseSequence >= 0 when producerId >= 0, a known codec,
and a records region that decodes to exactly recordsCount records with offset deltas 0..n-1.

Record offsets are baseOffset + offsetDelta; timestamps are baseTimestamp + timestampDelta, or the
batch maxTimestamp for every record under LOG_APPEND_TIME. Control batches (transaction markers)
hold one record: key = int16 version, int16 type (0 ABORT, 1 COMMIT); value = int16 version,
int32 coordinatorEpoch.

All byte-level work (header parsing, CRC-32C, varint encoding and decoding) goes through
`logstore._ffi` into the C core; this module does the Python-object side.

Thread-safety: `RecordBatch` is a read-only view; any number of threads may read it while nobody
writes the underlying buffer (`set_base_offset` / `set_partition_leader_epoch` patch it in place
and are for the single writer that owns the buffer). The functions are reentrant; the only
shared state is a bounded cache of encoded header keys (plain dict reads and writes).
"""

from __future__ import annotations

import struct
import time
from array import array

import numpy as np

from logstore import _ffi
from logstore import compression
from logstore.errors import (CorruptRecord, InvalidRecord, RecordTooLarge,
                             UnsupportedForMessageFormat)

_codecs = compression    # build_batch's `compression` argument shadows the module name

HEADER_SIZE = 61                     # RECORD_BATCH_OVERHEAD
LOG_OVERHEAD = 12                    # baseOffset + length
HEADER_SIZE_UP_TO_MAGIC = 17         # what a reader needs to frame a batch
LENGTH_MIN = HEADER_SIZE - LOG_OVERHEAD
FRAME_LENGTH_MIN = 14                # FileLogInputStream: smaller lengths are corrupt
MAGIC = 2
MAGIC_OFFSET = 16
LENGTH_OFFSET = 8
CRC_START = 21

CODEC_MASK = 0x07
ATTR_TIMESTAMP_TYPE = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
ATTR_DELETE_HORIZON = 0x40
ATTR_KNOWN_BITS = 0x7F                # bits 7..15 are unused and must be 0

CREATE_TIME = 0
LOG_APPEND_TIME = 1
NO_TIMESTAMP = -1
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1
INT32_MAX = 2**31 - 1

# Decompressed records of one batch may not exceed this (a decompression bomb is bad input).
DECOMPRESSED_BYTES_MAX = 256 * 1024 * 1024

_INT32 = struct.Struct(">i")
_CONTROL_KEY = struct.Struct(">hh")
_END_TXN_VALUE = struct.Struct(">hi")
CONTROL_KEY_SIZE = _CONTROL_KEY.size
END_TXN_VALUE_SIZE = _END_TXN_VALUE.size
CONTROL_KEY_VERSION = 0
END_TXN_VALUE_VERSION = 0


def increment_sequence(sequence: int, increment: int) -> int:
    """Kafka's DefaultRecordBatch.incrementSequence: sequences wrap from INT32_MAX to 0."""
    if sequence > INT32_MAX - increment:
        return increment - (INT32_MAX - sequence) - 1
    return sequence + increment


# ------------------------------------------------------------------------------------------------
# Records


class Record:
    """One decoded record. headers: [(key: str, value: bytes | None)].

    Batches decode through C (ls_records_build_objects), which fills the slots directly and
    stores None in _headers for a record without headers; `headers` reads it as []."""

    __slots__ = ("offset", "timestamp", "key", "value", "_headers")

    def __init__(self, offset: int, timestamp: int, key: bytes | None, value: bytes | None,
                 headers: list[tuple[str, bytes | None]]):
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self._headers = headers or None

    @property
    def headers(self) -> list[tuple[str, bytes | None]]:
        headers = self._headers
        return [] if headers is None else headers

    def _fields(self) -> tuple:
        return (self.offset, self.timestamp, self.key, self.value, self.headers)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None

    def __repr__(self) -> str:
        return (f"Record(offset={self.offset}, timestamp={self.timestamp}, key={self.key!r}, "
                f"value={self.value!r}, headers={self.headers!r})")


class ControlRecord:
    """The record of a control batch: an end-transaction marker (ABORT/COMMIT) or a KRaft type.

    coordinator_epoch is -1 for types other than ABORT and COMMIT; unknown types read as
    UNKNOWN, which readers ignore (ControlRecordType.fromTypeId)."""

    __slots__ = ("version", "type", "coordinator_epoch")

    UNKNOWN = -1
    ABORT = 0
    COMMIT = 1
    KNOWN_TYPES = range(0, 7)    # ABORT, COMMIT, LEADER_CHANGE .. KRAFT_VOTERS

    def __init__(self, version: int, type: int, coordinator_epoch: int = -1):
        self.version = version
        self.type = type
        self.coordinator_epoch = coordinator_epoch

    @classmethod
    def parse(cls, key: bytes | None, value: bytes | None) -> ControlRecord:
        """Decode a control record's key and value as Kafka does; InvalidRecord if malformed."""
        if key is None or len(key) < CONTROL_KEY_SIZE:
            raise InvalidRecord(
                f"control record key must have at least {CONTROL_KEY_SIZE} bytes, "
                f"found {0 if key is None else len(key)}")
        version, type_id = _CONTROL_KEY.unpack_from(key)
        if version < 0:
            raise InvalidRecord(f"invalid control record key version {version}")
        if type_id not in cls.KNOWN_TYPES:
            return cls(version, cls.UNKNOWN)
        if type_id not in (cls.ABORT, cls.COMMIT):
            return cls(version, type_id)
        if value is None or len(value) < END_TXN_VALUE_SIZE:
            raise InvalidRecord(
                f"end transaction marker value must have at least {END_TXN_VALUE_SIZE} bytes, "
                f"found {0 if value is None else len(value)}")
        value_version, coordinator_epoch = _END_TXN_VALUE.unpack_from(value)
        if value_version < 0:
            raise InvalidRecord(f"invalid end transaction marker version {value_version}")
        return cls(version, type_id, coordinator_epoch)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ControlRecord):
            return NotImplemented
        return (self.version, self.type, self.coordinator_epoch) == (
            other.version, other.type, other.coordinator_epoch)

    __hash__ = None

    def __repr__(self) -> str:
        return (f"ControlRecord(version={self.version}, type={self.type}, "
                f"coordinator_epoch={self.coordinator_epoch})")


ABORT = ControlRecord.ABORT
COMMIT = ControlRecord.COMMIT


# ------------------------------------------------------------------------------------------------
# The batch view


class RecordBatch:
    """A view over the bytes of one v2 batch (no copy): header fields, CRC, records.

    Construction parses the 61-byte header (magic 2, plausible length, whole batch present) but
    checks no CRC: call is_valid() or validate() for that."""

    __slots__ = ("_view", "_header")

    def __init__(self, buf, *, what: str = "record batch"):
        view = memoryview(buf).cast("B")
        header = _ffi.parse_header(view, what)
        self._view = view[:header.size]
        self._header = header

    # -- header fields -------------------------------------------------------------------------
    @property
    def buffer(self) -> memoryview:
        """The batch's bytes, exactly `size` of them."""
        return self._view

    @property
    def header(self) -> _ffi.BatchHeader:
        return self._header

    @property
    def base_offset(self) -> int:
        return self._header.base_offset

    @property
    def last_offset_delta(self) -> int:
        return self._header.last_offset_delta

    @property
    def last_offset(self) -> int:
        return self._header.base_offset + self._header.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    @property
    def size(self) -> int:
        return self._header.length + LOG_OVERHEAD

    @property
    def length(self) -> int:
        return self._header.length

    @property
    def partition_leader_epoch(self) -> int:
        return self._header.partition_leader_epoch

    @property
    def magic(self) -> int:
        return self._header.magic

    @property
    def crc(self) -> int:
        return self._header.crc

    @property
    def attributes(self) -> int:
        return self._header.attributes

    @property
    def compression(self) -> int:
        return self._header.attributes & CODEC_MASK

    @property
    def timestamp_type(self) -> int:
        return LOG_APPEND_TIME if self._header.attributes & ATTR_TIMESTAMP_TYPE else CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self._header.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self._header.attributes & ATTR_CONTROL)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self._header.attributes & ATTR_DELETE_HORIZON)

    @property
    def delete_horizon_ms(self) -> int | None:
        """The log cleaner's delete horizon (KIP-534), stored as baseTimestamp, or None."""
        return self._header.base_timestamp if self.has_delete_horizon else None

    @property
    def base_timestamp(self) -> int:
        return self._header.base_timestamp

    @property
    def max_timestamp(self) -> int:
        return self._header.max_timestamp

    @property
    def producer_id(self) -> int:
        return self._header.producer_id

    @property
    def has_producer_id(self) -> bool:
        return self._header.producer_id > NO_PRODUCER_ID

    @property
    def producer_epoch(self) -> int:
        return self._header.producer_epoch

    @property
    def base_sequence(self) -> int:
        return self._header.base_sequence

    @property
    def last_sequence(self) -> int:
        base = self._header.base_sequence
        if base == NO_SEQUENCE:
            return NO_SEQUENCE
        return increment_sequence(base, self._header.last_offset_delta)

    @property
    def records_count(self) -> int:
        return self._header.records_count

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return bytes(self._view)

    def __repr__(self) -> str:
        flags = "".join(name for bit, name in ((ATTR_TRANSACTIONAL, " transactional"),
                                               (ATTR_CONTROL, " control"))
                        if self._header.attributes & bit)
        return (f"<RecordBatch offsets {self.base_offset}..{self.last_offset} "
                f"count={self.records_count} size={self.size} "
                f"codec={compression.CODEC_NAMES.get(self.compression, self.compression)} "
                f"pid={self.producer_id} epoch={self.producer_epoch} "
                f"seq={self.base_sequence}{flags}>")

    # -- in-place patches (outside the CRC) ----------------------------------------------------
    def set_base_offset(self, base_offset: int) -> None:
        """Rewrite baseOffset in the (writable) buffer; the CRC does not cover it."""
        _ffi.set_base_offset(self._view, base_offset)
        self._header = self._header._replace(base_offset=base_offset)

    def set_partition_leader_epoch(self, epoch: int) -> None:
        _ffi.set_partition_leader_epoch(self._view, epoch)
        self._header = self._header._replace(partition_leader_epoch=epoch)

    # -- integrity -----------------------------------------------------------------------------
    def computed_crc(self) -> int:
        return _ffi.crc32c(self._view[CRC_START:])

    def is_valid(self) -> bool:
        """True when the stored CRC-32C matches the bytes (Kafka's isValid)."""
        return self.computed_crc() == self._header.crc

    def validate(self) -> None:
        """Kafka's ensureValid plus the header checks of ls_batch_validate: CRC, count >= 0,
        lastOffsetDelta >= 0, unused attribute bits 0, known codec. CorruptRecord otherwise."""
        what = f"record batch at offset {self.base_offset}"
        try:
            _ffi.validate_batch(self._view, what)
        except CorruptRecord as exc:
            computed = self.computed_crc()
            if computed != self._header.crc:
                raise CorruptRecord(
                    f"{what} is corrupt: stored CRC 0x{self._header.crc:08x}, "
                    f"computed 0x{computed:08x}") from exc
            raise

    # -- records -------------------------------------------------------------------------------
    def records_region(self, max_size: int = DECOMPRESSED_BYTES_MAX):
        """The (decompressed) bytes holding the records: a view when uncompressed."""
        region = self._view[HEADER_SIZE:]
        codec = self.compression
        if codec == compression.NONE:
            return region
        return compression.decompress(codec, region, max_size)

    def _columns(self, region):
        return _ffi.decode_records(region, self._header.records_count,
                                   f"records of the batch at offset {self.base_offset}")

    def records(self, max_size: int = DECOMPRESSED_BYTES_MAX) -> list[Record]:
        """Decode every record; InvalidRecord / CorruptRecord when the region is malformed.
        One C call builds all Record objects (csrc/pyobjects.c)."""
        header = self._header
        out: list[Record] = []
        _ffi.build_record_objects(
            self.records_region(max_size), header.records_count, header.base_offset,
            header.base_timestamp, bool(header.attributes & ATTR_TIMESTAMP_TYPE),
            header.max_timestamp, header.base_offset, Record, _RECORD_SLOTS, (), out,
            f"records of the batch at offset {header.base_offset}")
        return out

    def records_python(self, max_size: int = DECOMPRESSED_BYTES_MAX) -> list[Record]:
        """records() through numpy columns and Python objects: the independent decoder the
        tests compare the C object builder with."""
        region = self.records_region(max_size)
        cols = self._columns(region)
        data = region if isinstance(region, bytes) else bytes(region)
        count = self._header.records_count
        offsets = (cols.offset_deltas.astype(np.int64) + self._header.base_offset).tolist()
        if self._header.attributes & ATTR_TIMESTAMP_TYPE:
            timestamps = [self._header.max_timestamp] * count
        else:
            timestamps = (cols.timestamp_deltas + self._header.base_timestamp).tolist()
        keys = _slices(data, cols.key_offsets, cols.key_lengths)
        values = _slices(data, cols.value_offsets, cols.value_lengths)
        headers = _headers(data, cols)
        return list(map(Record, offsets, timestamps, keys, values, headers))

    def control_record(self) -> ControlRecord | None:
        """The marker of a control batch (its first record), or None when it holds no records
        (compaction removed them). InvalidRecord for a data batch."""
        if not self.is_control:
            raise InvalidRecord(f"the batch at offset {self.base_offset} is not a control batch")
        if self._header.records_count == 0:
            return None
        first = self.records()[0]
        return ControlRecord.parse(first.key, first.value)


# Slot descriptors in the order ls_records_build_objects fills them.
_RECORD_SLOTS = (Record.offset, Record.key, Record.value, Record._headers, Record.timestamp)


def _slices(data: bytes, offsets: np.ndarray, lengths: np.ndarray) -> list[bytes | None]:
    """data[offset:offset + length] per record, None for a length of -1. The common columns,
    all null (no keys) or none null, skip the per-record test."""
    if len(lengths) == 0:
        return []
    if lengths.max() < 0:
        return [None] * len(lengths)
    if lengths.min() >= 0:
        ends = offsets + lengths           # inside the region: the decoder checked both
        return [data[start:end] for start, end in zip(offsets.tolist(), ends.tolist())]
    return [data[start:start + n] if n >= 0 else None
            for start, n in zip(offsets.tolist(), lengths.tolist())]


def _headers(data: bytes, cols) -> list[list[tuple[str, bytes | None]]]:
    counts = cols.headers_counts
    result: list[list[tuple[str, bytes | None]]] = [[] for _ in range(len(counts))]
    for i in np.flatnonzero(counts).tolist():
        start = int(cols.headers_offsets[i])
        section = data[start:start + int(cols.headers_lengths[i])]
        result[i] = [(section[ko:ko + kl].decode("utf-8", "replace"),
                      section[vo:vo + vl] if vl >= 0 else None)
                     for ko, kl, vo, vl in _ffi.decode_headers(section, int(counts[i]))]
    return result


def iter_batches(buf, start: int = 0):
    """Yield a RecordBatch per whole batch in buf (e.g. a read result), from byte `start`.

    Stops cleanly at a partial tail (fewer than 17 bytes, or a batch running past the end), as
    Kafka's FileLogInputStream does. A length below 14 raises CorruptRecord, a magic other than
    2 UnsupportedForMessageFormat. CRCs are not checked here."""
    view = memoryview(buf).cast("B")
    pos, end = start, len(view)
    while end - pos >= HEADER_SIZE_UP_TO_MAGIC:
        (length,) = _INT32.unpack_from(view, pos + LENGTH_OFFSET)
        if length < FRAME_LENGTH_MIN:
            raise CorruptRecord(f"record batch at byte {pos} has length {length}, less than the "
                                f"minimum record overhead ({FRAME_LENGTH_MIN})")
        size = length + LOG_OVERHEAD
        if size > end - pos:
            return
        magic = view[pos + MAGIC_OFFSET]
        if magic != MAGIC:
            raise UnsupportedForMessageFormat(
                f"record batch at byte {pos} has magic {magic}; only magic {MAGIC} is supported")
        yield RecordBatch(view[pos:pos + size], what=f"record batch at byte {pos}")
        pos += size


# ------------------------------------------------------------------------------------------------
# Building


def _zigzag_varint(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_VARINT_CACHE_SIZE = 1024
_VARINT_CACHE = [_zigzag_varint(n) for n in range(_VARINT_CACHE_SIZE)]
_NULL_LENGTH = _zigzag_varint(-1)


def _varint(n: int) -> bytes:
    return _VARINT_CACHE[n] if 0 <= n < _VARINT_CACHE_SIZE else _zigzag_varint(n)


def _column(name: str, items, count: int) -> tuple[bytes, np.ndarray | array]:
    """Concatenated bytes and int32 lengths (-1 for None) of a list of bytes-like or None."""
    if len(items) != count:
        raise ValueError(f"{count} values but {len(items)} {name}s")
    try:
        data = b"".join(items)
    except TypeError:
        return _column_slow(name, items)
    lengths = np.fromiter(map(len, items), dtype=np.int32, count=count)
    if len(data) != int(lengths.sum(dtype=np.int64)):
        return _column_slow(name, items)        # some item's len() is not its byte count
    return data, lengths


def _column_slow(name: str, items) -> tuple[bytes, array]:
    """_column for lists holding None or buffers whose len() is not their byte count."""
    parts = []
    lengths = array("i")
    for i, item in enumerate(items):
        if item is None:
            lengths.append(-1)
            continue
        if not isinstance(item, (bytes, bytearray)):
            try:
                item = memoryview(item).tobytes()
            except TypeError:
                raise TypeError(f"{name} {i} is {type(item).__name__}, expected bytes or "
                                "None") from None
        parts.append(item)
        lengths.append(len(item))
    return b"".join(parts), lengths


# Encoded header keys (length varint + UTF-8), cached: header keys repeat across records.
_HEADER_KEY_CACHE: dict[str, bytes] = {}
HEADER_KEY_CACHE_MAX = 4096
_BYTES_TYPES = (bytes, bytearray)


def _header_key(i: int, key) -> bytes:
    encoded = _HEADER_KEY_CACHE.get(key) if isinstance(key, str) else None
    if encoded is None:
        if not isinstance(key, str):
            raise TypeError(f"header key of record {i} is {type(key).__name__}, expected str")
        raw = key.encode("utf-8")
        encoded = _varint(len(raw)) + raw
        if len(_HEADER_KEY_CACHE) < HEADER_KEY_CACHE_MAX:
            _HEADER_KEY_CACHE[key] = encoded
    return encoded


def _header_section(i: int, record_headers) -> bytes:
    """headersCount varint, then per header: key length, key, value length (-1: null), value."""
    n = len(record_headers)
    parts = [_VARINT_CACHE[n] if n < _VARINT_CACHE_SIZE else _zigzag_varint(n)]
    for key, value in record_headers:
        parts.append(_header_key(i, key))
        if value is None:
            parts.append(_NULL_LENGTH)
            continue
        if value.__class__ not in _BYTES_TYPES:
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise TypeError(f"header {key!r} of record {i} is {type(value).__name__}, "
                                "expected bytes or None")
            value = memoryview(value).tobytes()
        n = len(value)
        parts.append(_VARINT_CACHE[n] if n < _VARINT_CACHE_SIZE else _zigzag_varint(n))
        parts.append(value)
    return b"".join(parts)


def _encode_headers(headers, count: int) -> tuple[bytes | None, array | None]:
    """Pre-encoded header sections (headersCount varint + headers) per record, or (None, None)."""
    if headers is None:
        return None, None
    if len(headers) != count:
        raise ValueError(f"{count} values but {len(headers)} header lists")
    if not any(headers):
        return None, None
    sections = [_header_section(i, h) if h else b"\x00" for i, h in enumerate(headers)]
    return b"".join(sections), array("i", map(len, sections))


def _timestamps(timestamps, count: int, now_ms: int) -> tuple[array | None, int, int]:
    """(int64 array, base timestamp, max timestamp). With no timestamps every record gets
    now_ms: the array is None and C writes timestampDelta 0 for each record."""
    if timestamps is None:
        return None, now_ms, now_ms
    ts = timestamps if isinstance(timestamps, array) and timestamps.typecode == "q" \
        else array("q", timestamps)
    if len(ts) != count:
        raise ValueError(f"{count} values but {len(ts)} timestamps")
    return ts, ts[0], max(ts)


def _check_build_args(count: int, transactional: bool, producer_id: int,
                      timestamp_type: int) -> None:
    if count < 1:
        raise ValueError("a record batch needs at least one record")
    if count > INT32_MAX:
        raise ValueError(f"{count} records do not fit one batch")
    if transactional and producer_id < 0:
        raise ValueError("a transactional batch needs a producer id >= 0")
    if timestamp_type not in (CREATE_TIME, LOG_APPEND_TIME):
        raise ValueError(f"timestamp_type must be {CREATE_TIME} or {LOG_APPEND_TIME}, "
                         f"got {timestamp_type!r}")


def build_batch(values, keys=None, headers=None, timestamps=None, *, base_offset: int = 0,
                compression: int = 0, compression_level: int | None = None,
                producer_id: int = NO_PRODUCER_ID, producer_epoch: int = NO_PRODUCER_EPOCH,
                base_sequence: int = NO_SEQUENCE, transactional: bool = False,
                timestamp_type: int = CREATE_TIME,
                partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
                now_ms: int | None = None, out: bytearray | None = None) -> bytearray:
    """Build one v2 batch of len(values) records, as Kafka's MemoryRecordsBuilder would.

    out: an optional scratch bytearray reused across calls (the appender's buffer): when given,
    the batch is built into it and a memoryview of the used part is returned instead, so a hot
    loop allocates nothing. The view is valid until the scratch is reused.

    values / keys: bytes-like or None each (keys=None: every key null). headers: per record a
    list of (str, bytes | None), or None. timestamps: int ms per record (default: now_ms, or
    the clock, for all). baseTimestamp is the first record's timestamp, maxTimestamp the largest
    (under LOG_APPEND_TIME: now_ms, the append time). Offset deltas are 0..n-1."""
    count = len(values)
    _check_build_args(count, transactional, producer_id, timestamp_type)
    codec = compression
    _codecs.codec_name(codec)
    level = _codecs.validate_level(codec, compression_level)
    header_data, header_lengths = _encode_headers(headers, count)
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    ts, base_ts, max_ts = _timestamps(timestamps, count, now_ms)
    if type(values) in _SEQUENCE_TYPES:
        built = _build_gathering(values, keys, count, ts, base_ts, max_ts, codec, level, out,
                                 header_data, header_lengths, base_offset=base_offset,
                                 partition_leader_epoch=partition_leader_epoch,
                                 attributes=_attributes(codec, transactional, timestamp_type),
                                 producer_id=producer_id, producer_epoch=producer_epoch,
                                 base_sequence=base_sequence,
                                 log_append_time=timestamp_type == LOG_APPEND_TIME,
                                 now_ms=now_ms)
        if built is not None:
            return built
    value_data, value_lengths = _column("value", values, count)
    key_data, key_lengths = (None, None) if keys is None else _column("key", keys, count)
    attributes = codec | (ATTR_TRANSACTIONAL if transactional else 0)
    if timestamp_type == LOG_APPEND_TIME:
        attributes |= ATTR_TIMESTAMP_TYPE
        max_ts = now_ms
    header = _ffi.new_header(
        base_offset=base_offset, partition_leader_epoch=partition_leader_epoch,
        attributes=attributes, last_offset_delta=count - 1, base_timestamp=base_ts,
        max_timestamp=max_ts, producer_id=producer_id, producer_epoch=producer_epoch,
        base_sequence=base_sequence, records_count=count)
    bound = _ffi.records_size_bound(count, len(key_data or b""), len(value_data),
                                    len(header_data or b""))
    columns = (key_data, key_lengths, value_data, value_lengths, header_data, header_lengths)
    if codec == _codecs.NONE:
        out = bytearray(HEADER_SIZE + bound)
        size = _ffi.build_batch(out, header, count, ts, *columns)
        del out[size:]
        return out
    region = bytearray(bound)
    used = _ffi.encode_records(region, count, base_ts, ts, *columns)
    out = bytearray(HEADER_SIZE)
    out += _codecs.compress(codec, memoryview(region)[:used], level)
    _ffi.seal_batch(out, header)
    return out



def _attributes(codec: int, transactional: bool, timestamp_type: int) -> int:
    attributes = codec | (ATTR_TRANSACTIONAL if transactional else 0)
    if timestamp_type == LOG_APPEND_TIME:
        attributes |= ATTR_TIMESTAMP_TYPE
    return attributes


_SEQUENCE_TYPES = (list, tuple)
SCRATCH_GROWTH = 2


def _scratch(out: bytearray | None, size: int) -> bytearray:
    if out is None:
        return bytearray(size)
    if len(out) < size:
        out.extend(bytes(max(size, SCRATCH_GROWTH * len(out)) - len(out)))
    return out


def _build_gathering(values, keys, count: int, ts, base_ts: int, max_ts: int, codec: int,
                     level, out, header_data, header_lengths, *, log_append_time: bool,
                     now_ms: int, **fields):
    """The fast path: C gathers keys and values straight from the lists (csrc/pyobjects.c).
    None when an item is not bytes/None; build_batch then takes the copying path."""
    if log_append_time:
        max_ts = now_ms
    header = _ffi.new_header(last_offset_delta=count - 1, base_timestamp=base_ts,
                             max_timestamp=max_ts, records_count=count, **fields)
    if codec == _codecs.NONE and out is not None:
        size = _ffi.build_batch_sequences(out, header, count, ts, keys, values, header_data,
                                          header_lengths)
        if size is not None:
            return memoryview(out)[:size]
    sizes = _ffi.sequences_size(keys, values, count)
    if sizes is None:
        return None
    bound = _ffi.records_size_bound(count, sizes[0], sizes[1], len(header_data or b""))
    if codec == _codecs.NONE:
        buf = _scratch(out, HEADER_SIZE + bound)
        size = _ffi.build_batch_sequences(buf, header, count, ts, keys, values, header_data,
                                          header_lengths)
        if size is None:
            return None        # another thread changed the lists since they were sized
        if out is not None:
            return memoryview(buf)[:size]
        del buf[size:]
        return buf
    region = bytearray(bound)
    used = _ffi.encode_records_sequences(region, count, base_ts, ts, keys, values, header_data,
                                         header_lengths)
    buf = bytearray(HEADER_SIZE)
    buf += _codecs.compress(codec, memoryview(region)[:used], level)
    _ffi.seal_batch(buf, header)
    return buf


def build_control_batch(control_type: int, producer_id: int, producer_epoch: int,
                        coordinator_epoch: int, timestamp_ms: int, base_offset: int = 0, *,
                        partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH) -> bytearray:
    """The 78-byte end-transaction marker batch (KAFKA_FACTS.md 1.8, 2): attributes 0x30,
    baseSequence -1, one record with key (0, type) and value (0, coordinatorEpoch)."""
    if control_type not in (ABORT, COMMIT):
        raise ValueError(f"control_type must be ABORT ({ABORT}) or COMMIT ({COMMIT}), "
                         f"got {control_type!r}")
    if producer_id < 0:
        raise ValueError(f"a transaction marker needs a producer id >= 0, got {producer_id}")
    key = _CONTROL_KEY.pack(CONTROL_KEY_VERSION, control_type)
    value = _END_TXN_VALUE.pack(END_TXN_VALUE_VERSION, coordinator_epoch)
    header = _ffi.new_header(
        base_offset=base_offset, partition_leader_epoch=partition_leader_epoch,
        attributes=ATTR_TRANSACTIONAL | ATTR_CONTROL, base_timestamp=timestamp_ms,
        max_timestamp=timestamp_ms, producer_id=producer_id, producer_epoch=producer_epoch,
        base_sequence=NO_SEQUENCE)
    out = bytearray(HEADER_SIZE + _ffi.records_size_bound(1, len(key), len(value), 0))
    size = _ffi.build_batch(out, header, 1, array("q", (timestamp_ms,)), key,
                            array("i", (len(key),)), value, array("i", (len(value),)))
    del out[size:]
    return out


# ------------------------------------------------------------------------------------------------
# Validation of client appends


def _frame_single_batch(view: memoryview) -> None:
    """Exactly one whole v2 batch fills the buffer."""
    n = len(view)
    if n < HEADER_SIZE_UP_TO_MAGIC:
        raise CorruptRecord(f"append of {n} bytes is too short to hold a record batch "
                            f"(header is {HEADER_SIZE} bytes)")
    magic = view[MAGIC_OFFSET]
    if magic != MAGIC:
        raise UnsupportedForMessageFormat(
            f"record batch has magic {magic}; only magic {MAGIC} is supported")
    (length,) = _INT32.unpack_from(view, LENGTH_OFFSET)
    if length < LENGTH_MIN:
        raise CorruptRecord(f"record batch length {length} is less than the minimum "
                            f"{LENGTH_MIN} (a {HEADER_SIZE}-byte header)")
    size = length + LOG_OVERHEAD
    if size > n:
        raise CorruptRecord(f"record batch declares {size} bytes but the append holds only {n}")
    if size < n:
        raise InvalidRecord(f"an append must hold exactly one record batch: the first ends at "
                            f"byte {size} of {n}")


def _validate_batch_rules(batch: RecordBatch) -> None:
    """LogValidator.validateBatch: offset range vs count, no control batch, sequence."""
    base, last, count = batch.base_offset, batch.last_offset, batch.records_count
    if last - base + 1 <= 0:
        raise InvalidRecord(f"batch has an invalid offset range [{base}, {last}]")
    if count <= 0:
        raise InvalidRecord(f"invalid reported count for record batch: {count}")
    if last - base + 1 != count:
        raise InvalidRecord(f"inconsistent batch offset range [{base}, {last}] and count of "
                            f"records {count} (lastOffsetDelta {batch.last_offset_delta}, "
                            f"expected {count - 1})")
    if batch.is_control:
        raise InvalidRecord("clients are not allowed to write control records")
    if batch.has_producer_id and batch.base_sequence < 0:
        raise InvalidRecord(f"invalid sequence number {batch.base_sequence} in record batch "
                            f"with producerId {batch.producer_id}")


def validate_for_append(buf, max_message_bytes: int, *,
                        max_decompressed_bytes: int = DECOMPRESSED_BYTES_MAX,
                        require_zero_base_offset: bool = True) -> RecordBatch:
    """Check a client's append as Kafka's broker does; return the batch view on success.

    Order as UnifiedLog.analyzeAndValidateRecords, then LogValidator: framing, baseOffset 0
    (require_zero_base_offset), size, CRC, the batch rules, the records. Raises CorruptRecord
    (framing, CRC, attribute bits, codec, compressed stream), UnsupportedForMessageFormat
    (magic), RecordTooLarge (size > max_message_bytes) or InvalidRecord (the batch rules of the
    module docstring). Whatever passes also passes recovery's checks (ls_batch_validate)."""
    view = memoryview(buf).cast("B")
    _frame_single_batch(view)
    batch = RecordBatch(view, what="appended record batch")
    if require_zero_base_offset and batch.base_offset != 0:
        raise InvalidRecord(f"the baseOffset of the record batch in the append should be 0, "
                            f"but it is {batch.base_offset}")
    if batch.size > max_message_bytes:
        raise RecordTooLarge(f"the record batch size in the append is {batch.size} bytes which "
                             f"exceeds the maximum configured value of {max_message_bytes}")
    computed = batch.computed_crc()
    if computed != batch.crc:
        raise CorruptRecord(f"record batch is corrupt: stored CRC 0x{batch.crc:08x}, "
                            f"computed 0x{computed:08x}")
    _validate_attributes(batch)
    _validate_batch_rules(batch)
    _validate_records(batch, max_decompressed_bytes)
    return batch


def _validate_attributes(batch: RecordBatch) -> None:
    attributes = batch.attributes
    if attributes & ~ATTR_KNOWN_BITS:
        raise CorruptRecord(f"record batch has unused attribute bits set "
                            f"(attributes 0x{attributes & 0xFFFF:04x})")
    if batch.compression not in compression.CODEC_NAMES:
        raise CorruptRecord(f"record batch names unknown compression codec id "
                            f"{batch.compression}")


def _validate_records(batch: RecordBatch, max_decompressed_bytes: int) -> None:
    """The records region decodes to exactly records_count records with deltas 0..n-1."""
    cols = batch._columns(batch.records_region(max_decompressed_bytes))
    deltas = cols.offset_deltas
    wrong = np.flatnonzero(deltas != np.arange(len(deltas), dtype=deltas.dtype))
    if wrong.size:
        i = int(wrong[0])
        raise InvalidRecord(f"record {i} of the batch has offset delta {int(deltas[i])}, "
                            f"expected {i} (offset deltas must be 0..{len(deltas) - 1})")
