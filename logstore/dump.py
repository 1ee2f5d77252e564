"""Reading log files for people and scripts: `logstore dump` (Kafka's kafka-dump-log.sh).

What it reads:
  - a `.log` segment: every batch (header fields, codec, CRC and whether it is valid), with
    `records=True` every record too (offset, timestamp, key, value, headers; for control
    batches the marker type and coordinator epoch);
  - an `.index`, `.timeindex`, `.txnindex` or `.snapshot` file given directly: every entry;
  - a partition directory: its segments in base-offset order, each followed by a summary of its
    `.index` / `.timeindex` / `.txnindex`, then its producer `.snapshot` files;
  - a store directory: every partition directory in it, by topic then partition.

Output model: `dump()` yields events, plain dicts with a "type" key (directory, segment, batch,
corrupt, segment_end, offset_index, time_index, txn_index, snapshot, file_error). Keys, values
and header values stay bytes in the events; `format_text(event)` renders one event in
kafka-dump-log's style and `to_json(event)` as one JSON line. Bytes render as follows (the same
rule as `logstore consume --json`): None is null; bytes that are valid UTF-8 become a string;
anything else becomes {"base64": "<standard base64>"}, an object, so it can never be mistaken
for a string. In text output, control characters and backslashes of UTF-8 text are escaped
(\\n, \\t, \\x1b, \\\\) so one record stays on one line, non-UTF-8 bytes print as
`base64:<...>`, a null value prints as `null` and a null key is left out (as kafka-dump-log
leaves it out).

A damaged file is reported, never raised: a tail that does not frame as a batch (too short for
a header, a length below 14, a batch running past the end of the file, a magic other than 2, a
header that does not parse) ends the file's dump with a `corrupt` event naming the byte
position, the reason and how many bytes are affected. A batch whose CRC does not match is
printed with `isvalid: false` and the dump goes on, as kafka-dump-log does; records that do not
decode are reported on their batch.

Reading: files are read with pread in windows of READ_WINDOW_BYTES, never mmapped (another
process may truncate a file while we read it; a short read is reported as a partial tail, where
an mmap would die of SIGBUS) and never locked, so dump works on a directory that another
process has open. Bytes appended after a file was opened are not seen; a batch being written
at that moment may show up as a partial tail.

Thread-safety: no shared state; every call reads its own files.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from typing import Callable, Iterator

from logstore import _ffi, check, record_batch
from logstore.compression import CODEC_NAMES
from logstore.errors import LogstoreError
from logstore.record_batch import (FRAME_LENGTH_MIN, HEADER_SIZE, HEADER_SIZE_UP_TO_MAGIC,
                                   LENGTH_OFFSET, LOG_OVERHEAD, MAGIC, MAGIC_OFFSET,
                                   ControlRecord, RecordBatch)
from logstore.segment import (INDEX_SUFFIX, LOG_SUFFIX, SNAPSHOT_SUFFIX, TIME_INDEX_SUFFIX,
                              TXN_INDEX_SUFFIX, parse_base_offset)
from logstore.store import parse_partition_dir
from logstore.txn_index import ENTRY as TXN_ENTRY
from logstore.txn_index import ENTRY_SIZE as TXN_ENTRY_SIZE

READ_WINDOW_BYTES = 1 << 20          # one pread fills a window this big (or the batch, if larger)
SUMMARY_ENTRIES_MAX = 20             # txn-index / snapshot entries listed in a directory dump
OFFSET_ENTRY = struct.Struct(">ii")            # relativeOffset, position
TIME_ENTRY = struct.Struct(">qi")              # timestamp, relativeOffset
SNAPSHOT_HEADER = check.SNAPSHOT_HEADER        # version int16, crc uint32, count int32
SNAPSHOT_CRC_START = 6
# producerId, epoch, lastSequence, lastOffset, offsetDelta, timestamp, coordinatorEpoch,
# currentTxnFirstOffset (KAFKA_FACTS.md 3.6)
SNAPSHOT_ENTRY = struct.Struct(">qhiqiqiq")
assert SNAPSHOT_ENTRY.size == check.SNAPSHOT_ENTRY_SIZE
SNAPSHOT_FIELDS = ("producer_id", "producer_epoch", "last_sequence", "last_offset",
                   "offset_delta", "timestamp", "coordinator_epoch", "current_txn_first_offset")
TIMESTAMP_TYPE_NAMES = {record_batch.CREATE_TIME: "CreateTime",
                        record_batch.LOG_APPEND_TIME: "LogAppendTime"}
CONTROL_TYPE_NAMES = {ControlRecord.UNKNOWN: "UNKNOWN", ControlRecord.ABORT: "ABORT",
                      ControlRecord.COMMIT: "COMMIT", 2: "LEADER_CHANGE", 3: "SNAPSHOT_HEADER",
                      4: "SNAPSHOT_FOOTER", 5: "KRAFT_VERSION", 6: "KRAFT_VOTERS"}
INDEX_SUFFIXES = (INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX)
DUMPABLE_SUFFIXES = (LOG_SUFFIX,) + INDEX_SUFFIXES + (SNAPSHOT_SUFFIX,)

Progress = Callable[[int, int, str], None]     # (bytes done, bytes in total, current file)


class DumpError(Exception):
    """The path cannot be dumped at all (missing, or not a kind of file dump knows)."""


# ------------------------------------------------------------------------------------------------
# Entry point


def dump(path: str, records: bool = False, progress: Progress | None = None) -> Iterator[dict]:
    """Events describing `path` (a file or a partition or store directory), in file order."""
    if os.path.isdir(path):
        partitions = [path] if _segment_bases(path) else _partition_dirs(path)
        if not partitions:
            raise DumpError(f"{path} holds no .log files and no partition directories")
        meter = _Meter(progress, sum(_log_bytes(p) for p in partitions))
        for directory in partitions:
            yield from _dump_partition(directory, records, meter)
        return
    if not os.path.exists(path):
        raise DumpError(f"no such file or directory: {path}")
    suffix = next((s for s in DUMPABLE_SUFFIXES if path.endswith(s)), None)
    if suffix is None:
        raise DumpError(f"cannot dump {path}: expected a directory or a file ending in "
                        f"{', '.join(DUMPABLE_SUFFIXES)}")
    if suffix == LOG_SUFFIX:
        yield from dump_log(path, records, _Meter(progress, os.path.getsize(path)))
    else:
        yield _index_event(path, suffix, full=True)


def _dump_partition(directory: str, records: bool, meter: _Meter) -> Iterator[dict]:
    names = sorted(os.listdir(directory))
    bases = _segment_bases(directory)
    segment_suffixes = (LOG_SUFFIX,) + INDEX_SUFFIXES
    known = {f"{base:020d}{suffix}" for base in bases for suffix in segment_suffixes}
    snapshots = [n for n in names if n.endswith(SNAPSHOT_SUFFIX)]
    other = [n for n in names if n not in known and n not in snapshots]
    yield {"type": "directory", "path": directory, "segments": bases, "other_files": other}
    for base in bases:
        prefix = os.path.join(directory, f"{base:020d}")
        try:
            yield from dump_log(prefix + LOG_SUFFIX, records, meter)
        except OSError as exc:      # e.g. deleted by retention in the owning process meanwhile
            yield {"type": "file_error", "path": prefix + LOG_SUFFIX,
                   "reason": exc.strerror or str(exc)}
        for suffix in INDEX_SUFFIXES:
            if os.path.exists(prefix + suffix):
                yield _index_event(prefix + suffix, suffix, full=False)
    for name in snapshots:
        yield _index_event(os.path.join(directory, name), SNAPSHOT_SUFFIX, full=False)


def _segment_bases(directory: str) -> list[int]:
    bases = (parse_base_offset(n) for n in os.listdir(directory) if n.endswith(LOG_SUFFIX))
    return sorted(b for b in bases if b is not None)


def _partition_dirs(directory: str) -> list[str]:
    found = []
    for name in os.listdir(directory):
        full = os.path.join(directory, name)
        parsed = parse_partition_dir(name)
        if parsed is not None and os.path.isdir(full) and _segment_bases(full):
            found.append((parsed, full))
    return [full for _, full in sorted(found)]


def _log_bytes(directory: str) -> int:
    return sum(os.path.getsize(os.path.join(directory, f"{b:020d}{LOG_SUFFIX}"))
               for b in _segment_bases(directory))


class _Meter:
    """Counts bytes of .log files done, for the progress callback."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress = progress
        self.total = total
        self.done = 0

    def report(self, done_in_file: int, path: str) -> None:
        if self.progress is not None:
            self.progress(self.done + done_in_file, self.total, path)


# ------------------------------------------------------------------------------------------------
# .log files


class _Reader:
    """Windowed pread over one file. Short reads (end of file, a file that shrank) come back
    short, never as an exception."""

    def __init__(self, fd: int):
        self.fd = fd
        self.window = b""
        self.window_start = 0

    def read(self, position: int, length: int) -> memoryview:
        offset = position - self.window_start
        if offset < 0 or offset + length > len(self.window):
            self.window = _pread_full(self.fd, max(length, READ_WINDOW_BYTES), position)
            self.window_start, offset = position, 0
        return memoryview(self.window)[offset:offset + length]


def _pread_full(fd: int, length: int, position: int) -> bytes:
    parts = []
    while length > 0:
        chunk = os.pread(fd, length, position)
        if not chunk:
            break
        parts.append(chunk)
        length -= len(chunk)
        position += len(chunk)
    return b"".join(parts)


def dump_log(path: str, records: bool = False, meter: _Meter | None = None) -> Iterator[dict]:
    """Events of one .log file: segment, a batch per batch, maybe corrupt, segment_end."""
    meter = meter or _Meter(None, 0)
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        yield {"type": "segment", "path": path, "base_offset": parse_base_offset(
            os.path.basename(path)), "size": size}
        reader = _Reader(fd)
        position = batches = record_count = 0
        while position < size:
            framed = _frame(reader, position, size)
            if isinstance(framed, str):
                yield {"type": "corrupt", "path": path, "position": position,
                       "bytes": size - position, "reason": framed}
                break
            yield batch_event(path, position, framed, records)
            batches += 1
            record_count += framed.records_count
            position += framed.size
            meter.report(position, path)
        yield {"type": "segment_end", "path": path, "batches": batches,
               "records": record_count, "valid_bytes": position, "size": size}
    finally:
        os.close(fd)
    meter.done += size


def _frame(reader: _Reader, position: int, file_size: int) -> RecordBatch | str:
    """The batch at `position`, or why the bytes there are not one."""
    remaining = file_size - position
    head = reader.read(position, HEADER_SIZE_UP_TO_MAGIC)
    if len(head) < HEADER_SIZE_UP_TO_MAGIC:
        return (f"partial batch header: {len(head)} bytes left, a batch needs at least "
                f"{HEADER_SIZE}")
    (length,) = struct.unpack_from(">i", head, LENGTH_OFFSET)
    if length < FRAME_LENGTH_MIN:
        return f"batch length {length} is below the minimum of {FRAME_LENGTH_MIN}"
    size = length + LOG_OVERHEAD
    if size > remaining:
        return (f"partial batch: it declares {size} bytes but the file has {remaining} left "
                "(a torn write?)")
    if head[MAGIC_OFFSET] != MAGIC:
        return f"magic {head[MAGIC_OFFSET]}; only magic {MAGIC} batches are supported"
    data = reader.read(position, size)
    if len(data) < size:
        return f"the file shrank while being read: {len(data)} of {size} bytes read"
    try:
        return RecordBatch(data, what=f"record batch at byte {position}")
    except LogstoreError as exc:
        return str(exc)


def batch_event(path: str, position: int, batch: RecordBatch, records: bool) -> dict:
    """One batch's header fields (and records when asked) as an event."""
    computed = batch.computed_crc()
    event = {
        "type": "batch", "path": path, "base_offset": batch.base_offset,
        "last_offset": batch.last_offset, "count": batch.records_count,
        "base_sequence": batch.base_sequence, "last_sequence": batch.last_sequence,
        "producer_id": batch.producer_id, "producer_epoch": batch.producer_epoch,
        "partition_leader_epoch": batch.partition_leader_epoch,
        "is_transactional": batch.is_transactional, "is_control": batch.is_control,
        "delete_horizon_ms": batch.delete_horizon_ms, "position": position,
        "timestamp_type": TIMESTAMP_TYPE_NAMES[batch.timestamp_type],
        "base_timestamp": batch.base_timestamp, "max_timestamp": batch.max_timestamp,
        "size": batch.size, "magic": batch.magic,
        "compression": CODEC_NAMES.get(batch.compression, f"unknown({batch.compression})"),
        "crc": batch.crc, "crc_valid": computed == batch.crc,
    }
    if computed != batch.crc:
        event["computed_crc"] = computed
    if records:
        try:
            event["records"] = record_entries(batch)
        except (LogstoreError, ValueError) as exc:
            event["records_error"] = str(exc)
    return event


def record_entries(batch: RecordBatch) -> list[dict]:
    """Every record of a batch as a dict; raises LogstoreError when they do not decode."""
    entries = []
    for record in batch.records():
        sequence = -1
        if batch.base_sequence >= 0:
            sequence = record_batch.increment_sequence(batch.base_sequence,
                                                       record.offset - batch.base_offset)
        entry = {"offset": record.offset, "timestamp": record.timestamp,
                 "key_size": -1 if record.key is None else len(record.key),
                 "value_size": -1 if record.value is None else len(record.value),
                 "sequence": sequence, "key": record.key, "value": record.value,
                 "headers": [{"key": k, "value": v} for k, v in record.headers]}
        if batch.is_control:
            try:
                marker = ControlRecord.parse(record.key, record.value)
                entry["control_type"] = CONTROL_TYPE_NAMES.get(marker.type, str(marker.type))
                entry["coordinator_epoch"] = marker.coordinator_epoch
            except LogstoreError as exc:
                entry["control_error"] = str(exc)
        entries.append(entry)
    return entries


# ------------------------------------------------------------------------------------------------
# Index and snapshot files


def _index_event(path: str, suffix: str, full: bool) -> dict:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        return {"type": "file_error", "path": path, "reason": exc.strerror or str(exc)}
    base = parse_base_offset(os.path.basename(path))
    base = 0 if base is None else base
    if suffix == INDEX_SUFFIX:
        return offset_index_event(path, raw, base, full)
    if suffix == TIME_INDEX_SUFFIX:
        return time_index_event(path, raw, base, full)
    if suffix == TXN_INDEX_SUFFIX:
        return txn_index_event(path, raw, full)
    return snapshot_event(path, raw, base, full)


def _ordered_prefix(raw: bytes, entry: struct.Struct, in_order) -> tuple[list, int]:
    """Entries up to the first all-zero slot (preallocated space) or the first entry that
    breaks the order; returns (entries, byte position of an out-of-order entry or -1)."""
    usable = len(raw) - len(raw) % entry.size
    entries: list = []
    for n, fields in enumerate(entry.iter_unpack(raw[:usable])):
        if not any(fields):
            rest = raw[n * entry.size:usable]
            zeros = len(rest) - len(rest.lstrip(b"\0"))
            if zeros == len(rest):
                return entries, -1
            return entries, n * entry.size + zeros - zeros % entry.size
        if entries and not in_order(entries[-1], fields):
            return entries, n * entry.size
        entries.append(fields)
    return entries, -1


def _index_common(kind: str, path: str, raw: bytes, entry: struct.Struct, entries: list,
                  broken_at: int) -> dict:
    return {"type": kind, "path": path, "size": len(raw), "entries": len(entries),
            "slots": len(raw) // entry.size, "misaligned_bytes": len(raw) % entry.size,
            "out_of_order_at": broken_at}


def offset_index_event(path: str, raw: bytes, base: int, full: bool) -> dict:
    entries, broken = _ordered_prefix(raw, OFFSET_ENTRY,
                                      lambda a, b: b[0] > a[0] and b[1] > a[1])
    pairs = [{"offset": base + rel, "position": pos} for rel, pos in
             (entries if full else entries[:1] + entries[-1:])]
    event = _index_common("offset_index", path, raw, OFFSET_ENTRY, entries, broken)
    event["first"], event["last"] = (pairs[0], pairs[-1]) if pairs else (None, None)
    if full:
        event["entry_list"] = pairs
    return event


def time_index_event(path: str, raw: bytes, base: int, full: bool) -> dict:
    entries, broken = _ordered_prefix(raw, TIME_ENTRY,
                                      lambda a, b: b[0] >= a[0] and b[1] >= a[1])
    pairs = [{"timestamp": ts, "offset": base + rel} for ts, rel in
             (entries if full else entries[:1] + entries[-1:])]
    event = _index_common("time_index", path, raw, TIME_ENTRY, entries, broken)
    event["first"], event["last"] = (pairs[0], pairs[-1]) if pairs else (None, None)
    if full:
        event["entry_list"] = pairs
    return event


def txn_index_event(path: str, raw: bytes, full: bool) -> dict:
    usable = len(raw) - len(raw) % TXN_ENTRY_SIZE
    names = ("version", "producer_id", "first_offset", "last_offset", "last_stable_offset")
    entries = [dict(zip(names, fields)) for fields in TXN_ENTRY.iter_unpack(raw[:usable])]
    shown = entries if full else entries[:SUMMARY_ENTRIES_MAX]
    return {"type": "txn_index", "path": path, "size": len(raw), "entries": len(entries),
            "misaligned_bytes": len(raw) % TXN_ENTRY_SIZE, "aborted": shown}


def snapshot_event(path: str, raw: bytes, offset: int, full: bool) -> dict:
    event = {"type": "snapshot", "path": path, "offset": offset, "size": len(raw)}
    if len(raw) < SNAPSHOT_HEADER.size:
        event["problem"] = f"shorter than its {SNAPSHOT_HEADER.size}-byte header"
        return event
    version, crc, count = SNAPSHOT_HEADER.unpack_from(raw)
    body = raw[SNAPSHOT_HEADER.size:]
    usable = len(body) - len(body) % SNAPSHOT_ENTRY.size
    producers = [dict(zip(SNAPSHOT_FIELDS, fields))
                 for fields in SNAPSHOT_ENTRY.iter_unpack(body[:usable])]
    event.update(version=version, crc=crc,
                 crc_valid=_ffi.crc32c(memoryview(raw)[SNAPSHOT_CRC_START:]) == crc,
                 declared_producers=count, producer_count=len(producers),
                 producers=producers if full else producers[:SUMMARY_ENTRIES_MAX])
    if len(body) % SNAPSHOT_ENTRY.size or count != len(producers):
        event["problem"] = (f"declares {count} producers but holds {len(body)} bytes of "
                            f"{SNAPSHOT_ENTRY.size}-byte entries")
    return event


# ------------------------------------------------------------------------------------------------
# Rendering


def bytes_to_json(data: bytes | None):
    """None -> None; valid UTF-8 -> str; anything else -> {"base64": ...}."""
    if data is None:
        return None
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


_ESCAPES = {c: f"\\x{c:02x}" for c in list(range(0x20)) + [0x7F]}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord("\\"): "\\\\"})


def bytes_to_text(data: bytes | None) -> str:
    """One-line text: null, escaped UTF-8, or base64:<...> for bytes that are not UTF-8."""
    if data is None:
        return "null"
    try:
        return bytes(data).decode("utf-8").translate(_ESCAPES)
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode("ascii")


def _json_default(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes_to_json(bytes(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(event: dict) -> str:
    """One JSON line for an event (bytes rendered by bytes_to_json)."""
    return json.dumps(event, default=_json_default, ensure_ascii=False)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def format_text(event: dict) -> str:
    """kafka-dump-log-style lines for one event (may hold several lines)."""
    return _FORMATTERS[event["type"]](event)


def _format_directory(e: dict) -> str:
    other = f"; other files: {', '.join(e['other_files'])}" if e["other_files"] else ""
    return f"Partition directory {e['path']}: {len(e['segments'])} segment(s){other}"


def _format_segment(e: dict) -> str:
    return f"Dumping {e['path']}\nStarting offset: {e['base_offset']} ({e['size']} bytes)"


def _format_batch(e: dict) -> str:
    horizon = ("" if e["delete_horizon_ms"] is None
               else f" deleteHorizonMs: {e['delete_horizon_ms']}")
    line = (f"baseOffset: {e['base_offset']} lastOffset: {e['last_offset']} count: {e['count']} "
            f"baseSequence: {e['base_sequence']} lastSequence: {e['last_sequence']} "
            f"producerId: {e['producer_id']} producerEpoch: {e['producer_epoch']} "
            f"partitionLeaderEpoch: {e['partition_leader_epoch']} "
            f"isTransactional: {_flag(e['is_transactional'])} "
            f"isControl: {_flag(e['is_control'])}{horizon} position: {e['position']} "
            f"{e['timestamp_type']}: {e['max_timestamp']} size: {e['size']} "
            f"magic: {e['magic']} compresscodec: {e['compression']} crc: {e['crc']} "
            f"isvalid: {_flag(e['crc_valid'])}")
    if not e["crc_valid"]:
        line += f" computedCrc: {e['computed_crc']}"
    lines = [line]
    if "records_error" in e:
        lines.append(f"| records do not decode: {e['records_error']}")
    for record in e.get("records", ()):
        lines.append(_format_record(record, e["timestamp_type"]))
    return "\n".join(lines)


def _format_record(r: dict, timestamp_type: str) -> str:
    headers = ", ".join(f"{bytes_to_text(h['key'].encode())}={bytes_to_text(h['value'])}"
                        for h in r["headers"])
    line = (f"| offset: {r['offset']} {timestamp_type}: {r['timestamp']} "
            f"keySize: {r['key_size']} valueSize: {r['value_size']} "
            f"sequence: {r['sequence']} headers: [{headers}]")
    if "control_type" in r:
        kind = "endTxnMarker" if r["control_type"] in ("ABORT", "COMMIT") else "controlType"
        return f"{line} {kind}: {r['control_type']} coordinatorEpoch: {r['coordinator_epoch']}"
    if "control_error" in r:
        return f"{line} controlRecord: unreadable ({r['control_error']})"
    key = "" if r["key"] is None else f" key: {bytes_to_text(r['key'])}"
    return f"{line}{key} payload: {bytes_to_text(r['value'])}"


def _format_corrupt(e: dict) -> str:
    return (f"Found {e['bytes']} invalid bytes at position {e['position']} of {e['path']}: "
            f"{e['reason']}")


def _format_segment_end(e: dict) -> str:
    valid = ("all valid" if e["valid_bytes"] == e["size"]
             else f"{e['valid_bytes']} of {e['size']} valid")
    return f"Summary: {e['batches']} batches, {e['records']} records, bytes: {valid}"


def _index_tail(e: dict) -> str:
    notes = []
    if e["slots"] > e["entries"] and e["out_of_order_at"] < 0:
        notes.append(f"{e['slots'] - e['entries']} empty (preallocated) slots")
    if e["out_of_order_at"] >= 0:
        notes.append(f"out of order from byte {e['out_of_order_at']}")
    if e["misaligned_bytes"]:
        notes.append(f"{e['misaligned_bytes']} trailing bytes of a partial entry")
    return f"; {'; '.join(notes)}" if notes else ""


def _format_offset_index(e: dict) -> str:
    head = f"Offset index {e['path']}: {e['entries']} entries in {e['size']} bytes"
    if e["first"] and "entry_list" not in e:
        head += (f"; first offset {e['first']['offset']} at position "
                 f"{e['first']['position']}, last offset {e['last']['offset']} at position "
                 f"{e['last']['position']}")
    lines = [head + _index_tail(e)]
    lines += [f"offset: {p['offset']} position: {p['position']}" for p in e.get("entry_list", ())]
    return "\n".join(lines)


def _format_time_index(e: dict) -> str:
    head = f"Time index {e['path']}: {e['entries']} entries in {e['size']} bytes"
    if e["first"] and "entry_list" not in e:
        head += (f"; first timestamp {e['first']['timestamp']} at offset "
                 f"{e['first']['offset']}, last timestamp {e['last']['timestamp']} at offset "
                 f"{e['last']['offset']}")
    lines = [head + _index_tail(e)]
    lines += [f"timestamp: {p['timestamp']} offset: {p['offset']}"
              for p in e.get("entry_list", ())]
    return "\n".join(lines)


def _format_txn_index(e: dict) -> str:
    lines = [f"Transaction index {e['path']}: {e['entries']} aborted transaction(s)"
             + (f"; {e['misaligned_bytes']} trailing bytes" if e["misaligned_bytes"] else "")]
    lines += [f"version: {a['version']} producerId: {a['producer_id']} firstOffset: "
              f"{a['first_offset']} lastOffset: {a['last_offset']} lastStableOffset: "
              f"{a['last_stable_offset']}" for a in e["aborted"]]
    if e["entries"] > len(e["aborted"]):
        lines.append(f"... {e['entries'] - len(e['aborted'])} more")
    return "\n".join(lines)


def _format_snapshot(e: dict) -> str:
    if "version" not in e:
        return f"Producer snapshot {e['path']}: {e['problem']}"
    lines = [f"Producer snapshot {e['path']}: offset {e['offset']} version {e['version']} "
             f"crc: {e['crc']} isvalid: {_flag(e['crc_valid'])} producers: "
             f"{e['producer_count']}" + (f"; {e['problem']}" if "problem" in e else "")]
    lines += [f"producerId: {p['producer_id']} producerEpoch: {p['producer_epoch']} "
              f"lastSequence: {p['last_sequence']} lastOffset: {p['last_offset']} "
              f"offsetDelta: {p['offset_delta']} timestamp: {p['timestamp']} "
              f"coordinatorEpoch: {p['coordinator_epoch']} "
              f"currentTxnFirstOffset: {p['current_txn_first_offset']}"
              for p in e["producers"]]
    if e["producer_count"] > len(e["producers"]):
        lines.append(f"... {e['producer_count'] - len(e['producers'])} more")
    return "\n".join(lines)


def _format_file_error(e: dict) -> str:
    return f"Cannot read {e['path']}: {e['reason']}"


_FORMATTERS: dict[str, Callable[[dict], str]] = {
    "directory": _format_directory, "segment": _format_segment, "batch": _format_batch,
    "corrupt": _format_corrupt, "segment_end": _format_segment_end,
    "offset_index": _format_offset_index, "time_index": _format_time_index,
    "txn_index": _format_txn_index, "snapshot": _format_snapshot,
    "file_error": _format_file_error,
}
