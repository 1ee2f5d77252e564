"""The consistency checker: `logstore verify`, the test-suite fixture, and `strict` mode.

It reads a store or partition directory without opening it for writing and reports every
problem as (file, byte position, message). Checks:

  store:      topics.json parses; each topic's partition directories exist; checkpoint files
              parse; the clean-shutdown marker is present (else: "run logstore recover");
  partition:  file names; no leftovers of interrupted operations; no orphan index files;
  .log:       every batch: size, magic, CRC-32C (C scan), offsets strictly increasing and inside
              the segment's relative range; with deep=True every batch's records are decoded
              (decompressing) and must match the declared count and offset deltas;
  segments:   each segment's offsets lie below the next segment's base offset;
  .index:     size a multiple of 8; entries strictly increase; each entry points at the start of a
              batch whose last offset is the entry's offset;
  .timeindex: size a multiple of 12; timestamps and offsets increase; offsets inside the segment;
              timestamps not above the segment's max timestamp;
  .txnindex:  size a multiple of 34; version 0; lastOffset strictly increasing; each lastOffset
              is an ABORT marker in this segment;
  .snapshot:  version 1, CRC-32C over bytes [6, end), entry count matches the size.

Thread-safety: reads only; safe to run on a directory nobody writes to. On a directory another
process is writing, the active segment may be reported mid-append.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from typing import Callable

from logstore import _ffi, checkpoint, record_batch
from logstore.errors import LogstoreError
from logstore.log import CLEAN_SHUTDOWN_FILE
from logstore.segment import (INDEX_SUFFIX, LOG_SUFFIX, SNAPSHOT_SUFFIX, TIME_INDEX_SUFFIX,
                              TXN_INDEX_SUFFIX, parse_base_offset)
from logstore.store import PARTITIONS_MAX, TOPICS_FILE, parse_partition_dir

KNOWN_SUFFIXES = (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX, SNAPSHOT_SUFFIX)
PARTITION_FILES = (".lock", CLEAN_SHUTDOWN_FILE, checkpoint.RECOVERY_POINT_FILE,
                   checkpoint.LOG_START_OFFSET_FILE, "partition.metadata",
                   "leader-epoch-checkpoint")
STORE_FILES = (".lock", "meta.properties", TOPICS_FILE, CLEAN_SHUTDOWN_FILE,
               checkpoint.RECOVERY_POINT_FILE, checkpoint.LOG_START_OFFSET_FILE,
               checkpoint.HIGH_WATERMARK_FILE,
               "broker-state.json")   # the embedded broker's (txn layer) producer-id block
SCAN_CHUNK = 4096
SNAPSHOT_HEADER = struct.Struct(">hIi")
SNAPSHOT_ENTRY_SIZE = 46
SNAPSHOT_VERSION = 1
ABORT = 0

# Called after each segment is checked with (.log path, its size in bytes, batches in it):
# `logstore verify` counts and shows progress with it.
SegmentCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Problem:
    path: str
    position: int          # byte position in the file, -1 when not about a position
    message: str

    def __str__(self) -> str:
        where = f"{self.path}" + (f" @ byte {self.position}" if self.position >= 0 else "")
        return f"{where}: {self.message}"


def check(path: str, deep: bool = True,
          on_segment: SegmentCallback | None = None) -> list[Problem]:
    """Check a store directory or a single partition directory."""
    if is_partition_dir(path):
        return check_partition(path, deep, standalone=True, on_segment=on_segment)
    return check_store(path, deep, on_segment)


def is_partition_dir(path: str) -> bool:
    return any(name.endswith(LOG_SUFFIX) for name in os.listdir(path))


def check_store(path: str, deep: bool = True,
                on_segment: SegmentCallback | None = None) -> list[Problem]:
    problems: list[Problem] = []
    names = set(os.listdir(path))
    topics = _check_topics_file(path, problems)
    if topics and CLEAN_SHUTDOWN_FILE not in names:
        problems.append(Problem(path, -1, "the store was not shut down cleanly "
                                          "(no .kafka_cleanshutdown); run `logstore recover`"))
    for name in (checkpoint.RECOVERY_POINT_FILE, checkpoint.LOG_START_OFFSET_FILE,
                 checkpoint.HIGH_WATERMARK_FILE):
        if name in names:
            try:
                checkpoint.read_checkpoint(os.path.join(path, name))
            except checkpoint.CorruptCheckpoint as exc:
                problems.append(Problem(os.path.join(path, name), -1, str(exc)))
    for topic, partitions in topics.items():
        for partition in range(partitions):
            part = os.path.join(path, f"{topic}-{partition}")
            if not os.path.isdir(part):
                problems.append(Problem(part, -1, "partition directory is missing"))
            else:
                problems += check_partition(part, deep, on_segment=on_segment)
    for name in sorted(names):
        full = os.path.join(path, name)
        if name in STORE_FILES or name.endswith(".tmp"):
            continue
        parsed = parse_partition_dir(name) if os.path.isdir(full) else None
        if parsed is None or parsed[0] not in topics or parsed[1] >= topics[parsed[0]]:
            problems.append(Problem(full, -1, "unexpected entry in the store directory"))
    return problems


def _check_topics_file(path: str, problems: list[Problem]) -> dict[str, int]:
    full = os.path.join(path, TOPICS_FILE)
    if not os.path.exists(full):
        return {}
    try:
        with open(full, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise TypeError(f"a JSON {type(data).__name__}, not an object")
        counts = {name: int(entry["partitions"]) for name, entry in data.items()}
        for name, count in counts.items():
            if not 1 <= count <= PARTITIONS_MAX:
                raise ValueError(f"topic {name!r} has {count} partitions")
        return counts
    except (ValueError, KeyError, TypeError) as exc:
        problems.append(Problem(full, -1, f"unreadable topic list: {exc}"))
        return {}


def check_partition(path: str, deep: bool = True, standalone: bool = False,
                    on_segment: SegmentCallback | None = None) -> list[Problem]:
    problems: list[Problem] = []
    names = sorted(os.listdir(path))
    bases = sorted(parse_base_offset(n) for n in names
                   if n.endswith(LOG_SUFFIX) and parse_base_offset(n) is not None)
    for name in names:
        _check_name(path, name, set(bases), problems)
    if standalone and bases and CLEAN_SHUTDOWN_FILE not in names:
        problems.append(Problem(path, -1, "the log was not closed cleanly; run `logstore "
                                          "recover`"))
    previous_next = None
    for i, base in enumerate(bases):
        is_last = i == len(bases) - 1
        next_offset = _check_segment(path, base, deep, is_last, problems, on_segment)
        if previous_next is not None and base < previous_next:
            problems.append(Problem(_seg(path, base, LOG_SUFFIX), -1,
                                    f"segment base {base} overlaps the previous segment, which "
                                    f"ends at offset {previous_next - 1}"))
        previous_next = next_offset if next_offset is not None else previous_next
    for name in names:
        if name.endswith(SNAPSHOT_SUFFIX):
            _check_snapshot(os.path.join(path, name), problems)
    return problems


def _check_name(path: str, name: str, bases: set[int], problems: list[Problem]) -> None:
    full = os.path.join(path, name)
    if name in PARTITION_FILES or name.endswith(".tmp"):
        return
    if not name.endswith(KNOWN_SUFFIXES):
        problems.append(Problem(full, -1, "leftover or unknown file (an interrupted operation? "
                                          "run `logstore recover`)"))
        return
    base = parse_base_offset(name)
    if base is None:
        problems.append(Problem(full, -1, "file name is not a 20-digit offset"))
    elif not name.endswith((LOG_SUFFIX, SNAPSHOT_SUFFIX)) and base not in bases:
        problems.append(Problem(full, -1, "index file without its .log"))


def _seg(path: str, base: int, suffix: str) -> str:
    return os.path.join(path, f"{base:020d}{suffix}")


def _check_segment(path: str, base: int, deep: bool, is_last: bool, problems: list[Problem],
                   on_segment: SegmentCallback | None = None) -> int | None:
    log_path = _seg(path, base, LOG_SUFFIX)
    with open(log_path, "rb") as f:
        data = f.read()
    batches = _scan_log(log_path, data, base, deep, problems)
    if on_segment is not None:
        on_segment(log_path, len(data), len(batches))
    next_offset = batches[-1].last_offset + 1 if batches else None
    by_position = {b.position: b for b in batches}
    max_ts = max((b.max_timestamp for b in batches), default=-1)
    _check_offset_index(_seg(path, base, INDEX_SUFFIX), base, len(data), by_position, problems)
    _check_time_index(_seg(path, base, TIME_INDEX_SUFFIX), base, next_offset, max_ts, problems)
    aborts = {b.base_offset for b in batches if b.is_control and b.control_type == ABORT}
    _check_txn_index(_seg(path, base, TXN_INDEX_SUFFIX), base, aborts, problems)
    return next_offset


def _scan_log(log_path: str, data: bytes, base: int, deep: bool,
              problems: list[Problem]) -> list[_ffi.BatchInfo]:
    state = _ffi.new_scan_state(0)
    infos = _ffi.new_batch_infos(SCAN_CHUNK)
    found: list[_ffi.BatchInfo] = []
    while True:
        rc = _ffi.scan_segment(data, base, 1 << 30, state, verify_crc=True, infos=infos,
                               infos_cap=SCAN_CHUNK)
        found += _ffi.batch_infos(infos, state.infos)
        if rc != _ffi.SCAN_OUTPUT_FULL:
            break
    if state.error:
        problems.append(Problem(log_path, state.position,
                                f"invalid batch: {_ffi.strerror(state.error)} "
                                f"({len(data) - state.position} bytes from here are not valid)"))
    if deep:
        for info in found:
            batch = record_batch.RecordBatch(memoryview(data)[info.position:
                                                              info.position + info.size])
            try:
                records = batch.records()
            except LogstoreError as exc:
                problems.append(Problem(log_path, info.position, f"records do not decode: {exc}"))
                continue
            if len(records) != info.records_count:
                problems.append(Problem(log_path, info.position,
                                        f"batch declares {info.records_count} records, "
                                        f"holds {len(records)}"))
    return found


def _read_index(path: str, entry_size: int, problems: list[Problem]) -> bytes | None:
    if not os.path.exists(path):
        problems.append(Problem(path, -1, "index file is missing"))
        return None
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) % entry_size:
        problems.append(Problem(path, len(raw) - len(raw) % entry_size,
                                f"size {len(raw)} is not a multiple of {entry_size}"))
        raw = raw[: len(raw) - len(raw) % entry_size]
    return raw


def _check_offset_index(path: str, base: int, log_size: int, by_position: dict,
                        problems: list[Problem]) -> None:
    raw = _read_index(path, 8, problems)
    if raw is None:
        return
    count = len(raw) // 8
    bad = _ffi.offset_index_check(raw, count, log_size)
    if bad is not None:
        problems.append(Problem(path, bad * 8, f"entry {bad} breaks the index order or points "
                                               "past the log (untrimmed after a crash?)"))
        return
    for n in range(count):
        relative, position = struct.unpack_from(">ii", raw, n * 8)
        batch = by_position.get(position)
        if batch is None or batch.last_offset != base + relative:
            problems.append(Problem(path, n * 8, f"entry ({base + relative}, {position}) does "
                                                 "not point at the batch holding that offset"))
            return


def _check_time_index(path: str, base: int, next_offset: int | None, max_ts: int,
                      problems: list[Problem]) -> None:
    raw = _read_index(path, 12, problems)
    if raw is None:
        return
    count = len(raw) // 12
    bad = _ffi.time_index_check(raw, count)
    if bad is not None:
        problems.append(Problem(path, bad * 12, f"entry {bad} breaks the time index order"))
        return
    for n in range(count):
        timestamp, relative = struct.unpack_from(">qi", raw, n * 12)
        if next_offset is None or base + relative >= next_offset or timestamp > max_ts:
            problems.append(Problem(path, n * 12, f"entry ({timestamp}, {base + relative}) "
                                                  "is beyond the segment's data"))
            return


def _check_txn_index(path: str, base: int, aborts: set[int], problems: list[Problem]) -> None:
    if not os.path.exists(path):
        return
    raw = _read_index(path, 34, problems)
    bad = _ffi.txn_index_check(raw, base)
    if bad is not None:
        problems.append(Problem(path, bad * 34, f"entry {bad} breaks the txn index rules"))
        return
    for n in range(len(raw) // 34):
        last_offset = struct.unpack_from(">q", raw, n * 34 + 18)[0]
        if last_offset not in aborts:
            problems.append(Problem(path, n * 34, f"entry {n}: offset {last_offset} is not an "
                                                  "ABORT marker in this segment"))


def _check_snapshot(path: str, problems: list[Problem]) -> None:
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < SNAPSHOT_HEADER.size:
        problems.append(Problem(path, 0, "snapshot shorter than its 10-byte header"))
        return
    version, crc, count = SNAPSHOT_HEADER.unpack_from(data)
    if version != SNAPSHOT_VERSION:
        problems.append(Problem(path, 0, f"snapshot version {version}, expected 1"))
    elif _ffi.crc32c(memoryview(data)[6:]) != crc:
        problems.append(Problem(path, 2, "snapshot CRC-32C mismatch"))
    elif count < 0 or SNAPSHOT_HEADER.size + count * SNAPSHOT_ENTRY_SIZE != len(data):
        problems.append(Problem(path, 6, f"snapshot declares {count} entries but holds "
                                         f"{len(data) - SNAPSHOT_HEADER.size} bytes of them"))
