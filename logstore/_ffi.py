"""The only module that touches the compiled C core (logstore._native).

It checks at import that the extension matches this package (LS_ABI_VERSION), turns C return
codes into exceptions through one table (`ERROR_TABLE`), and offers plain Python functions over
the C contract in csrc/logstore.h. Buffers go in through the buffer protocol with no copy
(`ffi.from_buffer`); arrays are numpy arrays of the exact C type.

Every C call made through cffi releases the GIL, so scans, CRCs and fsyncs run while other Python
threads work.

Thread-safety: the functions are reentrant; the only C state is the fault-injection table (a test
seam) and the thread-local errno of the last failed I/O call.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from logstore import errors

try:
    from logstore._native import ffi, lib
except ImportError as exc:  # pragma: no cover - only when the build step was skipped
    raise ImportError(
        "logstore's C core is not built: run `make venv` (or `pip install -e .`) first"
    ) from exc

ABI_VERSION = 1

_abi = ffi.new("int32_t *")
lib.ls_version(_abi)
if _abi[0] != ABI_VERSION or lib.LS_ABI_VERSION != ABI_VERSION:
    raise ImportError(
        f"logstore._native ABI {_abi[0]} does not match the package's {ABI_VERSION}: rebuild it"
    )

BATCH_OVERHEAD = lib.LS_BATCH_OVERHEAD
LOG_OVERHEAD = lib.LS_LOG_OVERHEAD
SCAN_END = lib.LS_SCAN_END
SCAN_OUTPUT_FULL = lib.LS_SCAN_OUTPUT_FULL

# C error code -> (exception class, short description prefix). One table, as DESIGN.md asks.
ERROR_TABLE: dict[int, type[errors.LogstoreError]] = {
    lib.LS_ERR_INVALID_ARGUMENT: errors.LogstoreError,
    lib.LS_ERR_BUFFER_TOO_SMALL: errors.LogstoreError,
    lib.LS_ERR_TRUNCATED: errors.CorruptRecord,
    lib.LS_ERR_CORRUPT_BATCH: errors.CorruptRecord,
    lib.LS_ERR_CRC_MISMATCH: errors.CorruptRecord,
    lib.LS_ERR_UNSUPPORTED_MAGIC: errors.UnsupportedForMessageFormat,
    lib.LS_ERR_INVALID_RECORD: errors.InvalidRecord,
    lib.LS_ERR_OFFSET_OVERFLOW: errors.IndexOffsetOverflow,
    lib.LS_ERR_NON_MONOTONIC: errors.CorruptRecord,
    lib.LS_ERR_NOT_FOUND: errors.LogstoreError,
    lib.LS_ERR_IO: errors.KafkaStorageError,
    lib.LS_ERR_NO_SPACE: errors.LogDirFull,
    lib.LS_ERR_CORRUPT_INDEX: errors.CorruptIndex,
    lib.LS_ERR_UNSUPPORTED: errors.LogstoreError,
    lib.LS_ERR_FAULT_INJECTED: errors.KafkaStorageError,
}

ERR_NOT_FOUND = lib.LS_ERR_NOT_FOUND
ERR_TRUNCATED = lib.LS_ERR_TRUNCATED
ERR_BUFFER_TOO_SMALL = lib.LS_ERR_BUFFER_TOO_SMALL
ERR_UNSUPPORTED = lib.LS_ERR_UNSUPPORTED


def strerror(code: int) -> str:
    return ffi.string(lib.ls_strerror(code)).decode()


def error_for(code: int, what: str) -> errors.LogstoreError:
    """The exception for C return code `code`, with `what` saying which call on which object."""
    cls = ERROR_TABLE.get(code, errors.LogstoreError)
    message = f"{what}: {strerror(code)}"
    if code in (lib.LS_ERR_IO, lib.LS_ERR_NO_SPACE, lib.LS_ERR_FAULT_INJECTED):
        err = lib.ls_io_errno()
        if err:
            message += f" ({os.strerror(err)})"
        return cls(message, errno=err or None)
    return cls(message)


def check(rc: int, what: str) -> int:
    """Raise the mapped exception for a negative return code; pass other values through."""
    if rc < 0:
        raise error_for(rc, what)
    return rc


# ------------------------------------------------------------------------------------------------
# CRC-32C


def crc32c(data, crc: int = 0) -> int:
    out = ffi.new("uint32_t *")
    check(lib.ls_crc32c(crc, ffi.from_buffer(data), len(data), out), "crc32c")
    return out[0]


def crc32c_sw(data, crc: int = 0) -> int:
    out = ffi.new("uint32_t *")
    check(lib.ls_crc32c_sw(crc, ffi.from_buffer(data), len(data), out), "crc32c_sw")
    return out[0]


def crc32c_hw(data, crc: int = 0) -> int:
    out = ffi.new("uint32_t *")
    check(lib.ls_crc32c_hw(crc, ffi.from_buffer(data), len(data), out), "crc32c_hw")
    return out[0]


def crc32c_hw_available() -> bool:
    out = ffi.new("int32_t *")
    lib.ls_crc32c_hw_available(out)
    return bool(out[0])


# ------------------------------------------------------------------------------------------------
# Record batch headers


class BatchHeader(NamedTuple):
    """The 61-byte v2 header, decoded (host order)."""

    base_offset: int
    length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        return self.length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta


def _header_tuple(h) -> BatchHeader:
    return BatchHeader(h.base_offset, h.length, h.partition_leader_epoch, h.magic, h.crc,
                       h.attributes, h.last_offset_delta, h.base_timestamp, h.max_timestamp,
                       h.producer_id, h.producer_epoch, h.base_sequence, h.records_count)


def parse_header(buf, what: str = "batch header") -> BatchHeader:
    h = ffi.new("ls_batch_header *")
    check(lib.ls_batch_parse_header(ffi.from_buffer(buf), len(buf), h), what)
    return _header_tuple(h)


def validate_batch(buf, what: str = "record batch") -> BatchHeader:
    """Header checks plus the CRC over [21, end) of the first batch in buf."""
    h = ffi.new("ls_batch_header *")
    check(lib.ls_batch_validate(ffi.from_buffer(buf), len(buf), h), what)
    return _header_tuple(h)


def set_base_offset(buf, base_offset: int) -> None:
    check(lib.ls_batch_set_base_offset(ffi.from_buffer(buf, require_writable=True), len(buf),
                                       base_offset), "set base offset")


def set_partition_leader_epoch(buf, epoch: int) -> None:
    check(lib.ls_batch_set_partition_leader_epoch(
        ffi.from_buffer(buf, require_writable=True), len(buf), epoch), "set leader epoch")


def new_header(**fields) -> object:
    """A zeroed ls_batch_header cdata with the given fields set (for seal_batch/build_batch)."""
    h = ffi.new("ls_batch_header *")
    h.magic = 2
    h.partition_leader_epoch = -1
    h.producer_id = -1
    h.producer_epoch = -1
    h.base_sequence = -1
    h.base_timestamp = -1
    h.max_timestamp = -1
    for name, value in fields.items():
        setattr(h, name, value)
    return h


def seal_batch(buf, header) -> BatchHeader:
    """Write header fields into buf[0:61], set length, compute and store the CRC."""
    check(lib.ls_batch_seal(ffi.from_buffer(buf, require_writable=True), len(buf), header),
          "seal batch")
    return _header_tuple(header)


# ------------------------------------------------------------------------------------------------
# Records


def _ptr(ctype: str, arr):
    """A C pointer into a buffer, or NULL for None."""
    if arr is None:
        return ffi.NULL
    return ffi.from_buffer(ctype, arr)


def _invalid_argument(call: str, detail: str) -> errors.LogstoreError:
    return ERROR_TABLE[lib.LS_ERR_INVALID_ARGUMENT](
        f"{call}: {strerror(lib.LS_ERR_INVALID_ARGUMENT)}: {detail}")


def _check_column(call: str, what: str, count: int, data, lengths) -> None:
    """The C encoders take no size for concatenated data, and cffi does not size typed arrays
    against `count`: check that `lengths` holds `count` int32 entries whose non-negative sum
    fits in `data`, so the C code never reads past either buffer."""
    if lengths is None:
        return
    view = memoryview(lengths)
    if view.itemsize != 4 or view.nbytes < 4 * count:
        raise _invalid_argument(call, f"{what} lengths must be {count} int32 entries, got "
                                      f"{view.nbytes} bytes of {view.itemsize}-byte items")
    need = int(np.maximum(np.frombuffer(view, dtype=np.int32, count=count), 0)
               .sum(dtype=np.int64))
    have = 0 if data is None else memoryview(data).nbytes
    if need > have:
        raise _invalid_argument(call, f"{what} lengths add up to {need} bytes but the data "
                                      f"holds {have}")


def _check_record_columns(call: str, count: int, timestamps, keys, key_lengths, values,
                          value_lengths, headers, headers_lengths) -> None:
    if timestamps is not None:
        view = memoryview(timestamps)
        if view.itemsize != 8 or view.nbytes < 8 * count:
            raise _invalid_argument(call, f"timestamps must be {count} int64 entries, got "
                                          f"{view.nbytes} bytes of {view.itemsize}-byte items")
    _check_column(call, "key", count, keys, key_lengths)
    _check_column(call, "value", count, values, value_lengths)
    _check_column(call, "header section", count, headers, headers_lengths)


def records_size_bound(count: int, keys_bytes: int, values_bytes: int, headers_bytes: int) -> int:
    out = ffi.new("int64_t *")
    check(lib.ls_records_size_bound(count, keys_bytes, values_bytes, headers_bytes, out),
          "records size bound")
    return out[0]


def encode_records(out, count: int, base_timestamp: int, timestamps, keys, key_lengths,
                   values, value_lengths, headers=None, headers_lengths=None) -> int:
    """Encode records into the writable buffer `out`; return the bytes written."""
    _check_record_columns("encode records", count, timestamps, keys, key_lengths, values,
                          value_lengths, headers, headers_lengths)
    written = ffi.new("size_t *")
    check(lib.ls_records_encode(
        ffi.from_buffer(out, require_writable=True), len(out), written, count, base_timestamp,
        _ptr("int64_t[]", timestamps), _ptr("uint8_t[]", keys), _ptr("int32_t[]", key_lengths),
        _ptr("uint8_t[]", values), _ptr("int32_t[]", value_lengths),
        _ptr("uint8_t[]", headers), _ptr("int32_t[]", headers_lengths)), "encode records")
    return written[0]


def encode_headers(out, count: int, keys, key_lengths, values, value_lengths) -> int:
    _check_column("encode headers", "header key", count, keys, key_lengths)
    _check_column("encode headers", "header value", count, values, value_lengths)
    written = ffi.new("size_t *")
    check(lib.ls_headers_encode(
        ffi.from_buffer(out, require_writable=True), len(out), written, count,
        _ptr("uint8_t[]", keys), _ptr("int32_t[]", key_lengths),
        _ptr("uint8_t[]", values), _ptr("int32_t[]", value_lengths)), "encode headers")
    return written[0]


def build_batch(out, header, count: int, timestamps, keys, key_lengths, values, value_lengths,
                headers=None, headers_lengths=None) -> int:
    """Build a whole uncompressed batch into `out`; return its size. header is updated."""
    _check_record_columns("build batch", count, timestamps, keys, key_lengths, values,
                          value_lengths, headers, headers_lengths)
    written = ffi.new("size_t *")
    check(lib.ls_batch_build(
        ffi.from_buffer(out, require_writable=True), len(out), written, header, count,
        _ptr("int64_t[]", timestamps), _ptr("uint8_t[]", keys), _ptr("int32_t[]", key_lengths),
        _ptr("uint8_t[]", values), _ptr("int32_t[]", value_lengths),
        _ptr("uint8_t[]", headers), _ptr("int32_t[]", headers_lengths)), "build batch")
    return written[0]


# ------------------------------------------------------------------------------------------------
# Gather encoding straight from lists of bytes objects (csrc/pyobjects.c)


def _sequence(seq):
    """The address of a list/tuple for the gather encoders (NULL for None)."""
    return ffi.NULL if seq is None else ffi.cast("void *", id(seq))


def sequences_size(keys, values, count: int) -> tuple[int, int] | None:
    """(key bytes, value bytes) when keys/values are lists or tuples of `count` bytes-or-None
    items; None when the gather path does not apply (the caller copies instead)."""
    if type(values) not in (list, tuple) or (keys is not None and type(keys) not in (list, tuple)):
        return None
    key_bytes = ffi.new("int64_t *")
    value_bytes = ffi.new("int64_t *")
    rc = lib.ls_sequences_size(_sequence(keys), _sequence(values), count, key_bytes,
                               value_bytes)
    if rc == lib.LS_ERR_INVALID_ARGUMENT:
        return None
    check(rc, "sequences size")
    return key_bytes[0], value_bytes[0]


def build_batch_sequences(out, header, count: int, timestamps, keys, values, headers=None,
                          headers_lengths=None) -> int | None:
    """ls_batch_build gathering from lists of bytes/None; the size, or None when an item is
    another type or `out` is too small (the caller sizes with sequences_size and retries)."""
    if type(values) not in (list, tuple) or (keys is not None and type(keys) not in (list, tuple)):
        return None
    written = ffi.new("size_t *")
    rc = lib.ls_batch_build_sequences(
        ffi.from_buffer(out, require_writable=True), len(out), written, header, count,
        _ptr("int64_t[]", timestamps), _sequence(keys), _sequence(values),
        _ptr("uint8_t[]", headers), _ptr("int32_t[]", headers_lengths))
    if rc in (lib.LS_ERR_INVALID_ARGUMENT, ERR_BUFFER_TOO_SMALL):
        return None
    check(rc, "build batch")
    return written[0]


def encode_records_sequences(out, count: int, base_timestamp: int, timestamps, keys, values,
                             headers=None, headers_lengths=None) -> int:
    written = ffi.new("size_t *")
    check(lib.ls_records_encode_sequences(
        ffi.from_buffer(out, require_writable=True), len(out), written, count, base_timestamp,
        _ptr("int64_t[]", timestamps), _sequence(keys), _sequence(values),
        _ptr("uint8_t[]", headers), _ptr("int32_t[]", headers_lengths)), "encode records")
    return written[0]


def build_record_objects(region, count: int, base_offset: int, base_timestamp: int,
                         log_append_time: bool, max_timestamp: int, min_offset: int, cls,
                         slots: tuple, constants: tuple, out: list,
                         what: str = "records") -> int:
    """Append one `cls` instance per record of a (decompressed) records region to the list
    `out` (ls_records_build_objects: slots filled in C, __init__ not called); records below
    min_offset are skipped. Returns how many were appended. slots: the class's member
    descriptors for (offset, key, value, headers, timestamp) and then one per constant."""
    if type(out) is not list or type(slots) is not tuple or type(constants) is not tuple:
        raise TypeError("out must be a list, slots and constants tuples")
    built = ffi.new("int32_t *")
    rc = lib.ls_records_build_objects(
        ffi.from_buffer(region), len(region), count, base_offset, base_timestamp,
        1 if log_append_time else 0, max_timestamp, min_offset, ffi.cast("void *", id(cls)),
        ffi.cast("void *", id(slots)), ffi.cast("void *", id(constants)),
        ffi.cast("void *", id(out)), built)
    if rc == lib.LS_ERR_INVALID_ARGUMENT:
        del out[len(out) - built[0]:]
        raise _invalid_argument("build record objects", f"{what}: a slot descriptor or "
                                "argument does not fit, or Python ran out of memory")
    if rc < 0:
        del out[len(out) - built[0]:]
    check(rc, what)
    return built[0]


class RecordColumns(NamedTuple):
    """Decoded records as numpy columns; offsets are relative to the records region."""

    timestamp_deltas: np.ndarray
    offset_deltas: np.ndarray
    key_offsets: np.ndarray
    key_lengths: np.ndarray
    value_offsets: np.ndarray
    value_lengths: np.ndarray
    headers_offsets: np.ndarray
    headers_lengths: np.ndarray
    headers_counts: np.ndarray


# The smallest encoded record (seven 1-byte fields): a count above len(region) // 7 is corrupt,
# and is rejected before allocating the columns for it.
RECORD_SIZE_MIN = 7


def decode_records(region, count: int, what: str = "records") -> RecordColumns:
    """Decode a (decompressed) records region of `count` records into columns."""
    if count < 0:
        raise errors.CorruptRecord(f"{what}: negative record count {count}")
    if count * RECORD_SIZE_MIN > len(region):
        raise errors.InvalidRecord(
            f"{what}: {count} records cannot fit in {len(region)} bytes")
    ts = np.empty(count, dtype=np.int64)
    cols = [np.empty(count, dtype=np.int32) for _ in range(8)]
    check(lib.ls_records_decode_columns(
        ffi.from_buffer(region), len(region), count, ffi.from_buffer("int64_t[]", ts),
        *(ffi.from_buffer("int32_t[]", c) for c in cols)), what)
    return RecordColumns(ts, *cols)


def decode_record_structs(region, count: int, what: str = "records") -> list[tuple[int, ...]]:
    """Decode through ls_records_decode (one ls_record per record); a tuple per record in
    ls_record field order: (timestamp_delta, offset_delta, key_offset, key_length, value_offset,
    value_length, headers_offset, headers_length, headers_count)."""
    if count < 0:
        raise errors.CorruptRecord(f"{what}: negative record count {count}")
    if count * RECORD_SIZE_MIN > len(region):
        raise errors.InvalidRecord(
            f"{what}: {count} records cannot fit in {len(region)} bytes")
    out = ffi.new("ls_record[]", count)
    check(lib.ls_records_decode(ffi.from_buffer(region), len(region), count, out, count), what)
    return [(r.timestamp_delta, r.offset_delta, r.key_offset, r.key_length, r.value_offset,
             r.value_length, r.headers_offset, r.headers_length, r.headers_count) for r in out]


def decode_headers(buf, count: int) -> list[tuple[int, int, int, int]]:
    """(key_offset, key_length, value_offset, value_length) per header, relative to buf."""
    if count == 0:
        return []
    out = ffi.new("ls_header[]", count)
    check(lib.ls_headers_decode(ffi.from_buffer(buf), len(buf), count, out, count),
          "decode headers")
    return [(h.key_offset, h.key_length, h.value_offset, h.value_length) for h in out]


# ------------------------------------------------------------------------------------------------
# Partitioner hashes (csrc/partitioner.c)


def murmur2(data) -> int:
    """Kafka's Utils.murmur2 (signed int32), in C."""
    out = ffi.new("int32_t *")
    check(lib.ls_murmur2(ffi.from_buffer(data), len(data), out), "murmur2")
    return out[0]


# The partition functions return the partition itself: bytes go straight to C (no out-pointer).
murmur2_partition = lib.ls_murmur2_partition       # (key: bytes, len, partition_count) -> int
fnv1a_partition = lib.ls_fnv1a_partition           # (key: bytes, len, partition_count) -> int


# ------------------------------------------------------------------------------------------------
# Segment scans


class BatchInfo(NamedTuple):
    position: int
    base_offset: int
    last_offset: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    size: int
    base_sequence: int
    records_count: int
    producer_epoch: int
    attributes: int
    control_type: int
    coordinator_epoch: int

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & 0x10)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & 0x20)


def _info_tuple(i) -> BatchInfo:
    return BatchInfo(i.position, i.base_offset, i.last_offset, i.base_timestamp,
                     i.max_timestamp, i.producer_id, i.size, i.base_sequence, i.records_count,
                     i.producer_epoch, i.attributes, i.control_type, i.coordinator_epoch)


def new_scan_state(start_position: int = 0):
    state = ffi.new("ls_scan_state *")
    check(lib.ls_scan_init(state, start_position), "scan init")
    return state


def new_batch_infos(count: int):
    return ffi.new("ls_batch_info[]", count)


def batch_infos(infos, count: int) -> list[BatchInfo]:
    return [_info_tuple(infos[i]) for i in range(count)]


def scan_segment(region, base_offset: int, index_interval_bytes: int, state, *,
                 verify_crc: bool = True, index_out=None, time_index_out=None,
                 infos=None, infos_cap: int = 0, producer_batches_only: bool = False) -> int:
    """One call of ls_segment_scan; returns SCAN_END, SCAN_OUTPUT_FULL, or 0 with state.error.

    index_out / time_index_out are writable buffers (e.g. numpy views of the index mmaps at the
    first free slot); their capacities are derived from their sizes. None means "not wanted"
    (no entries are written, the bookkeeping still advances); a buffer too small for one more
    entry (an index that is full) makes the scan stop with SCAN_OUTPUT_FULL when one is due."""
    index_cap = len(index_out) // 8 if index_out is not None else 0
    time_cap = len(time_index_out) // 12 if time_index_out is not None else 0
    rc = lib.ls_segment_scan(
        ffi.from_buffer(region), len(region), base_offset, index_interval_bytes,
        1 if verify_crc else 0, state, _out_ptr(index_out), index_cap,
        _out_ptr(time_index_out), time_cap, infos if infos is not None else ffi.NULL, infos_cap,
        1 if producer_batches_only else 0)
    return check(rc, "segment scan")


def _out_ptr(buf):
    """A writable pointer into buf, or NULL for None (an empty buffer stays non-NULL)."""
    return ffi.NULL if buf is None else ffi.from_buffer(buf, require_writable=True)


def find_offset(region, start_position: int, target_offset: int) -> BatchInfo | None:
    out = ffi.new("ls_batch_info *")
    rc = lib.ls_segment_find_offset(ffi.from_buffer(region), len(region), start_position,
                                    target_offset, out)
    if rc == ERR_NOT_FOUND:
        return None
    check(rc, "find offset")
    return _info_tuple(out)


def find_timestamp(region, start_position: int, target_timestamp: int) -> BatchInfo | None:
    out = ffi.new("ls_batch_info *")
    rc = lib.ls_segment_find_timestamp(ffi.from_buffer(region), len(region), start_position,
                                       target_timestamp, out)
    if rc == ERR_NOT_FOUND:
        return None
    check(rc, "find timestamp")
    return _info_tuple(out)


def read_extent(region, start_position: int, max_bytes: int,
                upper_offset: int) -> tuple[int, int]:
    """(end_position, next_offset) of the whole batches a fetch from start_position returns."""
    end = ffi.new("int64_t *")
    nxt = ffi.new("int64_t *")
    check(lib.ls_segment_read_extent(ffi.from_buffer(region), len(region), start_position,
                                     max_bytes, upper_offset, end, nxt), "read extent")
    return end[0], nxt[0]


# ------------------------------------------------------------------------------------------------
# Indexes

OFFSET_INDEX_ENTRY_SIZE = 8         # relative offset int32, position int32
TIME_INDEX_ENTRY_SIZE = 12          # timestamp int64, relative offset int32


def offset_index_lookup(entries, entry_count: int, base_offset: int,
                        target: int) -> tuple[int, int]:
    off = ffi.new("int64_t *")
    pos = ffi.new("int32_t *")
    check(lib.ls_offset_index_lookup(_index_ptr(entries, entry_count), entry_count, base_offset,
                                     target, off, pos), "offset index lookup")
    return off[0], pos[0]


def offset_index_upper_bound(entries, entry_count: int, base_offset: int,
                             target_position: int) -> int | None:
    off = ffi.new("int64_t *")
    rc = lib.ls_offset_index_upper_bound(_index_ptr(entries, entry_count), entry_count,
                                         base_offset, target_position, off)
    if rc == ERR_NOT_FOUND:
        return None
    check(rc, "offset index upper bound")
    return off[0]


def offset_index_check(entries, entry_count: int, log_size: int) -> int | None:
    """None when the index is sane, else the number of the first bad entry."""
    bad = ffi.new("int64_t *")
    rc = lib.ls_offset_index_check(_index_ptr(entries, entry_count), entry_count, log_size, bad)
    if rc == lib.LS_ERR_CORRUPT_INDEX:
        return bad[0]
    check(rc, "offset index check")
    return None


def time_index_lookup(entries, entry_count: int, base_offset: int,
                      target_timestamp: int) -> tuple[int, int]:
    ts = ffi.new("int64_t *")
    off = ffi.new("int64_t *")
    ptr = _index_ptr(entries, entry_count, TIME_INDEX_ENTRY_SIZE)
    check(lib.ls_time_index_lookup(ptr, entry_count, base_offset, target_timestamp, ts, off),
          "time index lookup")
    return ts[0], off[0]


def time_index_check(entries, entry_count: int) -> int | None:
    bad = ffi.new("int64_t *")
    rc = lib.ls_time_index_check(_index_ptr(entries, entry_count, TIME_INDEX_ENTRY_SIZE),
                                 entry_count, bad)
    if rc == lib.LS_ERR_CORRUPT_INDEX:
        return bad[0]
    check(rc, "time index check")
    return None


def _index_ptr(entries, entry_count: int, entry_size: int = OFFSET_INDEX_ENTRY_SIZE):
    """The C pointer to `entries`; refuses a count the buffer does not hold (the C side trusts
    the count, so a larger one would read past the buffer)."""
    if entry_count < 0 or (entry_count and (entries is None
                                            or len(entries) < entry_count * entry_size)):
        raise ValueError(f"index buffer of {0 if entries is None else len(entries)} bytes "
                         f"does not hold {entry_count} entries of {entry_size} bytes")
    if entry_count == 0:
        return ffi.NULL
    return ffi.from_buffer(entries)


TXN_COLLECT_CAP = 1024


def txn_index_collect(region, fetch_offset: int,
                      upper_offset: int) -> tuple[list[tuple[int, int]], bool]:
    """([(producer_id, first_offset)], stop) of aborted txns in one .txnindex region."""
    if len(region) == 0:
        return [], False
    cap = TXN_COLLECT_CAP
    while True:
        pids = ffi.new("int64_t[]", cap)
        firsts = ffi.new("int64_t[]", cap)
        count = ffi.new("int32_t *")
        stop = ffi.new("int32_t *")
        rc = lib.ls_txn_index_collect(ffi.from_buffer(region), len(region), fetch_offset,
                                      upper_offset, pids, firsts, cap, count, stop)
        if rc == ERR_BUFFER_TOO_SMALL:
            cap *= 4
            continue
        check(rc, "txn index collect")
        return [(pids[i], firsts[i]) for i in range(count[0])], bool(stop[0])


def txn_index_check(region, base_offset: int) -> int | None:
    if len(region) == 0:
        return None
    bad = ffi.new("int64_t *")
    rc = lib.ls_txn_index_check(ffi.from_buffer(region), len(region), base_offset, bad)
    if rc == lib.LS_ERR_CORRUPT_INDEX:
        return bad[0]
    check(rc, "txn index check")
    return None


# ------------------------------------------------------------------------------------------------
# File I/O through the C table (fault-injectable)


def pwrite_all(fd: int, data, offset: int, what: str = "write") -> None:
    check(lib.ls_io_pwrite_all(fd, ffi.from_buffer(data), len(data), offset), what)


def pread_all(fd: int, size: int, offset: int, what: str = "read") -> bytes:
    buf = bytearray(size)
    nread = ffi.new("size_t *")
    check(lib.ls_io_pread_all(fd, ffi.from_buffer(buf, require_writable=True), size, offset,
                              nread), what)
    return bytes(buf[: nread[0]])


def fsync(fd: int, what: str = "fsync") -> None:
    check(lib.ls_io_fsync(fd), what)


def fdatasync(fd: int, what: str = "fdatasync") -> None:
    check(lib.ls_io_fdatasync(fd), what)


def ftruncate(fd: int, length: int, what: str = "truncate") -> None:
    check(lib.ls_io_ftruncate(fd, length), what)


def rename(source: str, target: str, what: str = "rename") -> None:
    check(lib.ls_io_rename(os.fsencode(source), os.fsencode(target)), what)


IO_OP_WRITE = lib.LS_IO_OP_WRITE
IO_OP_READ = lib.LS_IO_OP_READ
IO_OP_SYNC = lib.LS_IO_OP_SYNC
IO_OP_TRUNCATE = lib.LS_IO_OP_TRUNCATE
IO_OP_RENAME = lib.LS_IO_OP_RENAME
FAULT_ERROR = lib.LS_FAULT_ERROR
FAULT_SHORT_WRITE = lib.LS_FAULT_SHORT_WRITE
FAULT_CRASH_AFTER = lib.LS_FAULT_CRASH_AFTER


def io_fault_set(op_mask: int, kind: int, err: int = 0, after_calls: int = 0, count: int = -1,
                 nbytes: int = 0, path_filter: str = "") -> None:
    """Arm a fault (logstore.h has the model); path_filter restricts rename faults to targets
    containing it."""
    check(lib.ls_io_fault_set_path_filter(os.fsencode(path_filter)), "fault path filter")
    check(lib.ls_io_fault_set(op_mask, kind, err, after_calls, count, nbytes), "fault set")


def io_fault_clear() -> None:
    check(lib.ls_io_fault_clear(), "fault clear")


def io_fault_fired() -> int:
    out = ffi.new("int64_t *")
    check(lib.ls_io_fault_fired(out), "fault fired")
    return out[0]


# ------------------------------------------------------------------------------------------------
# Power-cut journal (csrc/io_journal.c has the model; tests/crash/powercut.py the harness)


def io_journal_start() -> None:
    """Start recording what every write, truncate, sync and rename of the io table changes."""
    check(lib.ls_io_journal_start(), "journal start")


def io_journal_stop() -> None:
    check(lib.ls_io_journal_stop(), "journal stop")


def io_journal_note_dir(path: str) -> None:
    """Take the directory's current entries as durable (the baseline at the start)."""
    check(lib.ls_io_journal_note_dir(os.fsencode(path)), f"journal baseline of {path}")


def io_journal_broken() -> int:
    """The errno that made the journal lose track of the files, 0 while it follows them."""
    out = ffi.new("int32_t *")
    check(lib.ls_io_journal_broken(out), "journal state")
    return out[0]


def io_journal_cut(root: str, dir_entries: bool = True) -> tuple[int, int]:
    """Rewind every file to its last fsync and (dir_entries) every directory under root to its
    entries at its last fsync: (files rewound, directory entries changed)."""
    files = ffi.new("int64_t *")
    entries = ffi.new("int64_t *")
    flags = lib.LS_JOURNAL_CUT_DIR_ENTRIES if dir_entries else 0
    rc = lib.ls_io_journal_cut(os.fsencode(root), flags, files, entries)
    if rc == ERR_UNSUPPORTED:
        broken = io_journal_broken()
        raise errors.LogstoreError(
            "power cut: no journal runs, or it lost track of the files"
            + (f" ({os.strerror(broken)})" if broken else ""))
    check(rc, f"power cut under {root}")
    return files[0], entries[0]
