"""`Log`: one partition, a sequence of segments in a directory (Kafka's UnifiedLog + LocalLog).

What it holds:
  - segments ordered by base offset, the last one active (the only one appended to);
  - log start offset (first readable offset), log end offset (next offset to assign), the high
    watermark (= the log end offset: one replica), and the recovery point (everything below it is
    fsynced);
  - durability settings `flush.messages` / `flush.ms` and a group commit: concurrent callers of
    `flush(offset)` share one fdatasync; whoever arrives while a sync runs waits for it and starts
    the next one only if its data is not yet covered.

Invariants: offsets strictly increase across batches and segments; the segment table is replaced
as a whole (copy-on-write), so readers take one reference and never see a half-updated list; a
write error leaves `size`/`log_end_offset` unchanged (nothing partial is ever readable); after a
failed fsync the log is offline and refuses writes until it is reopened and recovered.

Thread-safety: appends, rolls, truncation and retention hold `self.lock` (an RLock the txn layer
also holds around validate-append-update sequences). Reads take no lock. `flush` syncs outside
the lock so appends continue during an fsync.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

from logstore import _ffi, checkpoint, fsutil, record_batch
from logstore.config import LogConfig
from logstore.errors import (InvalidRecord, KafkaStorageError, LogClosed, LogDirFull, LogOffline,
                             OffsetOutOfRange, RecordBatchTooLarge, RecordTooLarge)
from logstore.lock import DirectoryLock
from logstore.log_loader import RecoveryReport, load_segments
from logstore.scheduler import Scheduler, wall_ms
from logstore.segment import SNAPSHOT_SUFFIX, LogSegment

logger = logging.getLogger("logstore.log")

DEFAULT_FETCH_MAX_BYTES = 1048576
CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
EARLIEST_TIMESTAMP = -2
LATEST_TIMESTAMP = -1
MAX_TIMESTAMP = -3
ATTR_LOG_APPEND_TIME = 0x08
FLUSH_CHECK_PERIOD_MS = 100


@dataclass(frozen=True)
class AppendInfo:
    """Result of an append: the offsets assigned and the broker time used, if any."""

    first_offset: int
    last_offset: int
    log_append_time_ms: int      # -1 unless message.timestamp.type=LogAppendTime
    records_count: int
    size: int
    max_timestamp: int


@dataclass(frozen=True)
class ReadResult:
    """Whole batches read from one segment: `records` is a zero-copy view of segment bytes."""

    records: memoryview
    fetch_offset: int
    next_offset: int              # offset after the last batch returned (fetch_offset if none)
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    segment_base_offset: int = -1
    position: int = -1

    def batches(self) -> Iterator[record_batch.RecordBatch]:
        return record_batch.iter_batches(self.records)


@dataclass(frozen=True)
class _SegmentTable:
    segments: tuple[LogSegment, ...]
    bases: tuple[int, ...]

    @classmethod
    def of(cls, segments) -> _SegmentTable:
        segments = tuple(segments)
        return cls(segments, tuple(s.base_offset for s in segments))

    def floor_index(self, offset: int) -> int:
        """Index of the last segment with base <= offset (0 if offset is below all)."""
        return max(0, bisect.bisect_right(self.bases, offset) - 1)


class Log:
    """One partition. Open standalone with `Log.open(path)`; LogStore opens its own."""

    def __init__(self, directory: str, config: LogConfig | None = None, *,
                 topic: str | None = None, partition: int | None = None,
                 recovery_point: int = 0, log_start_offset: int = 0,
                 clean_shutdown: bool = False, scheduler: Scheduler | None = None,
                 time_ms: Callable[[], int] = wall_ms, on_recovered_batches=None,
                 lock: bool = True):
        self.directory = os.path.abspath(directory)
        fsutil.make_dirs(self.directory)
        self.config = config or LogConfig()
        self.topic, self.partition = _topic_partition(self.directory, topic, partition)
        self.time_ms = time_ms
        self.lock = threading.RLock()
        self._dir_lock = DirectoryLock(self.directory) if lock else None
        if self._dir_lock:
            self._dir_lock.acquire()
        self._closed = False
        self._offline: Exception | None = None
        self._roll_listeners: list[Callable[[int], None]] = []
        self._delete_listeners: list[Callable[[list[int]], None]] = []
        self._flush_cond = threading.Condition()
        self._flushing = False
        # Opening may have created the directory's first segment files: the first flush syncs
        # the directory, or a power cut could take the names of fsynced data away.
        self._dir_dirty = True
        try:
            segments, self.recovery_report = load_segments(
                self.directory, self.config, clean_shutdown=clean_shutdown,
                recovery_point=recovery_point, log_start_offset=log_start_offset,
                now_ms=time_ms(), on_batches=on_recovered_batches)
        except BaseException:
            if self._dir_lock:
                self._dir_lock.release()
            raise
        self._table = _SegmentTable.of(segments)
        self._log_end_offset = segments[-1].next_offset
        self._log_start_offset = max(log_start_offset, segments[0].base_offset)
        self._log_start_offset = min(self._log_start_offset, self._log_end_offset)
        self.recovery_point = min(max(recovery_point, 0), self._log_end_offset)
        if self.recovery_report.segments_recovered or clean_shutdown:
            self.recovery_point = self._log_end_offset
        self._unflushed_messages = 0
        self._last_flush_ms = time_ms()
        self._scheduler = scheduler
        self._owns_scheduler = False
        self._standalone = False
        # Called after delete_records_before or a truncation moved the log start offset; the
        # owner persists it at once (retention needs no call: the first segment's base says it).
        self.on_log_start_change: Callable[[Log], None] | None = None
        if self.config.flush_ms < LONG_FLUSH_DISABLED:
            self._schedule_flush_check()

    # -- standalone open/close -------------------------------------------------------------

    @classmethod
    def open(cls, directory: str, config: LogConfig | dict | None = None, **kwargs) -> Log:
        """Open one partition directory on its own: its lock, recovery-point checkpoint and
        clean-shutdown marker live in the directory itself."""
        if isinstance(config, dict):
            config = LogConfig.from_dict(config)
        directory = os.path.abspath(directory)
        fsutil.make_dirs(directory)
        marker = os.path.join(directory, CLEAN_SHUTDOWN_FILE)
        clean = os.path.exists(marker)
        points = _read_points(directory)
        log = cls(directory, config, clean_shutdown=clean,
                  recovery_point=points[0], log_start_offset=points[1], **kwargs)
        log._standalone = True
        if clean:
            os.unlink(marker)
            fsutil.fsync_dir(directory)
        return log

    def close(self) -> None:
        """Flush everything, trim the active indexes, and (standalone) write the checkpoints
        and the clean-shutdown marker."""
        with self.lock:
            if self._closed:
                return
            clean = self._offline is None
            try:
                if clean:
                    self.flush()
                    for segment in self._table.segments:
                        segment.flush_all()
            finally:
                self._closed = True
                if self._scheduler and self._owns_scheduler:
                    self._scheduler.shutdown()
                for segment in self._table.segments:
                    segment.close()
            if self._standalone and clean:
                self._write_standalone_checkpoints()
                fsutil.atomic_write(os.path.join(self.directory, CLEAN_SHUTDOWN_FILE), b"")
            if self._dir_lock:
                self._dir_lock.release()

    def abandon(self) -> None:
        """Let go of every file without flushing, trimming or marking a clean shutdown: the
        state a killed process leaves (its page cache survives). A fault-injection seam: the
        next open runs recovery exactly as after kill -9."""
        with self.lock:
            self._closed = True
            if self._scheduler and self._owns_scheduler:
                self._scheduler.shutdown()
            for segment in self._table.segments:
                segment.abandon()
            if self._dir_lock:
                self._dir_lock.release()

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write_standalone_checkpoints(self) -> None:
        key = (self.topic, self.partition)
        checkpoint.write_checkpoint(
            os.path.join(self.directory, checkpoint.RECOVERY_POINT_FILE),
            {key: self.recovery_point})
        checkpoint.write_checkpoint(
            os.path.join(self.directory, checkpoint.LOG_START_OFFSET_FILE),
            {key: self._log_start_offset})

    # -- offsets ----------------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._log_end_offset

    @property
    def high_watermark(self) -> int:
        return self._log_end_offset

    @property
    def segments(self) -> tuple[LogSegment, ...]:
        return self._table.segments

    @property
    def active_segment(self) -> LogSegment:
        return self._table.segments[-1]

    @property
    def size_in_bytes(self) -> int:
        return sum(s.size for s in self._table.segments)

    @property
    def closed(self) -> bool:
        return self._closed

    def add_roll_listener(self, listener: Callable[[int], None]) -> None:
        """listener(new_segment_base_offset) runs under the lock after each roll."""
        self._roll_listeners.append(listener)

    def add_delete_listener(self, listener: Callable[[list[int]], None]) -> None:
        """listener(deleted_base_offsets) runs under the lock after segments are deleted."""
        self._delete_listeners.append(listener)

    # -- append -----------------------------------------------------------------------------

    def append(self, values, keys=None, headers=None, timestamps=None, *, compression=0,
               durable: bool = False, **batch_fields) -> AppendInfo:
        """Build one batch from the records and append it (offsets assigned here)."""
        scratch = getattr(_SCRATCH, "buffer", None)
        if scratch is None:
            scratch = _SCRATCH.buffer = bytearray(SCRATCH_BYTES_INITIAL)
        batch = record_batch.build_batch(values, keys, headers, timestamps,
                                         compression=compression, out=scratch, **batch_fields)
        return self.append_batch(batch, validate=False, durable=durable)

    def append_batch(self, batch, *, assign_offsets: bool = True, validate: bool = True,
                     durable: bool = False) -> AppendInfo:
        """Append one v2 record batch as it is (CRC kept; base offset rewritten in place).

        validate: Kafka's client-append checks (CRC, sizes, counts, no control batch); the
        embedded producer and the coordinator pass False for batches they just built.
        durable: return only once the batch is fsynced (group-committed with other callers)."""
        buf = batch if _writable(batch) else bytearray(batch)
        if validate:
            record_batch.validate_for_append(buf, self.config.max_message_bytes,
                                             require_zero_base_offset=assign_offsets)
        header = _ffi.parse_header(buf)
        self._check_batch_size(header)
        with self.lock:
            self._check_writable()
            info = self._append_locked(buf, header, assign_offsets)
            self._unflushed_messages += info.records_count
            flush_now = self._unflushed_messages >= self.config.flush_messages
        if durable or flush_now:
            self.flush(info.last_offset + 1)
        return info

    def _check_batch_size(self, header: _ffi.BatchHeader) -> None:
        if header.size > self.config.max_message_bytes:
            raise RecordTooLarge(
                f"{self.name}: batch of {header.size} bytes exceeds max.message.bytes "
                f"{self.config.max_message_bytes}")
        if header.size > self.config.segment_bytes:
            raise RecordBatchTooLarge(
                f"{self.name}: batch of {header.size} bytes exceeds segment.bytes "
                f"{self.config.segment_bytes}")

    def _append_locked(self, buf, header: _ffi.BatchHeader, assign_offsets: bool) -> AppendInfo:
        if assign_offsets:
            base = self._log_end_offset
            _ffi.set_base_offset(buf, base)
        else:
            base = header.base_offset
            if base < self._log_end_offset:
                raise InvalidRecord(f"{self.name}: batch base offset {base} is below the log end "
                                    f"offset {self._log_end_offset}")
        last = base + header.last_offset_delta
        now = self.time_ms()
        append_time = -1
        max_timestamp = header.max_timestamp
        if self.config.log_append_time and not header.attributes & 0x20:
            append_time = max_timestamp = now
            _set_log_append_time(buf, header, now)
        segment = self._maybe_roll(header.size, max_timestamp, base, last, now)
        view = memoryview(buf)[: header.size]
        try:
            segment.append(view, last, max_timestamp)
        except LogDirFull:
            raise
        except KafkaStorageError as exc:
            self._go_offline(exc)
            raise
        self._log_end_offset = last + 1
        return AppendInfo(base, last, append_time, header.records_count, header.size,
                          max_timestamp)

    def _maybe_roll(self, size: int, max_timestamp: int, base_offset: int, last_offset: int,
                    now: int) -> LogSegment:
        segment = self.active_segment
        if segment.should_roll(size, max_timestamp, last_offset, now):
            segment = self.roll(base_offset)
        return segment

    def roll(self, new_base: int | None = None) -> LogSegment:
        """Seal the active segment and start a new one at new_base (default: the log end
        offset; an incoming batch's base offset when it rolls the segment, as Kafka)."""
        with self.lock:
            self._check_writable()
            old = self.active_segment
            new_base = self._log_end_offset if new_base is None else new_base
            if old.size == 0:
                return old
            try:
                old.on_become_inactive()
                new = LogSegment(self.directory, new_base, self.config, active=True,
                                 created_ms=self.time_ms())
            except (KafkaStorageError, OSError) as exc:
                # The old segment is half sealed (an index trimmed, a sync failed): appending
                # on would build on it, and a sync that failed must not be retried as if it
                # had not. Offline until reopened and recovered.
                self._go_offline(exc)
                raise
            self._table = _SegmentTable.of(self._table.segments + (new,))
            self._dir_dirty = True
            for listener in self._roll_listeners:
                listener(new_base)
            return new

    # -- durability -------------------------------------------------------------------------

    def flush(self, offset: int | None = None) -> None:
        """Return once every batch below `offset` (default: the log end offset) is fsynced.

        Group commit: one caller syncs every segment with unflushed bytes while the others wait;
        a waiter whose data the finished sync did not cover starts the next one."""
        target = self._log_end_offset if offset is None else offset
        with self._flush_cond:
            while True:
                if self._offline is not None:
                    raise LogOffline(f"{self.name} is offline after an I/O error: "
                                     f"{self._offline}; reopen it to recover")
                if self.recovery_point >= target:
                    return
                if not self._flushing:
                    self._flushing = True
                    break
                self._flush_cond.wait()
        synced_to = None
        try:
            synced_to = self._sync_unflushed()
        except KafkaStorageError as exc:
            self._go_offline(exc)
            raise
        finally:
            with self._flush_cond:
                self._flushing = False
                if synced_to is not None and synced_to > self.recovery_point:
                    self.recovery_point = synced_to
                self._flush_cond.notify_all()

    def _sync_unflushed(self) -> int:
        with self.lock:
            end = self._log_end_offset
            table = self._table
            dir_dirty, self._dir_dirty = self._dir_dirty, False
            messages = self._unflushed_messages
            self._unflushed_messages = 0
        start = table.floor_index(self.recovery_point)
        try:
            for segment in table.segments[start:]:
                segment.flush()
            if dir_dirty:
                fsutil.fsync_dir(self.directory)
        except BaseException:
            with self.lock:
                self._unflushed_messages += messages
                self._dir_dirty = self._dir_dirty or dir_dirty
            raise
        self._last_flush_ms = self.time_ms()
        return end

    def _schedule_flush_check(self) -> None:
        if self._scheduler is None:
            self._scheduler = Scheduler(name=f"logstore-flush-{self.name}", time_ms=self.time_ms)
            self._owns_scheduler = True
        period = max(1, min(self.config.flush_ms, FLUSH_CHECK_PERIOD_MS))
        self._scheduler.schedule(f"flush:{self.directory}", self.maybe_flush_on_time, period)

    def maybe_flush_on_time(self) -> bool:
        """flush.ms: flush when data older than flush.ms is not yet synced."""
        if self._closed or self._offline is not None:
            return False
        if self.recovery_point >= self._log_end_offset:
            return False
        if self.time_ms() - self._last_flush_ms < self.config.flush_ms:
            return False
        self.flush()
        return True

    def _go_offline(self, exc: Exception) -> None:
        if self._offline is None:
            self._offline = exc
            logger.error("%s: taken offline after I/O error: %s", self.name, exc)

    def _check_writable(self) -> None:
        if self._closed:
            raise LogClosed(f"{self.name} is closed")
        if self._offline is not None:
            raise LogOffline(f"{self.name} is offline after an I/O error: {self._offline}; "
                             "reopen it to recover")

    @property
    def offline(self) -> bool:
        return self._offline is not None

    # -- read -------------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int = DEFAULT_FETCH_MAX_BYTES,
             upper_offset: int | None = None) -> ReadResult:
        """Whole batches starting with the one that holds `offset`, up to max_bytes (at least
        one batch) and below upper_offset (default the high watermark; the txn layer passes the
        last stable offset). Views are zero-copy slices of the segment mmap."""
        if self._closed:
            raise LogClosed(f"{self.name} is closed")
        table = self._table
        end = self._log_end_offset
        start = self._log_start_offset
        upper = end if upper_offset is None else min(upper_offset, end)
        if offset < start or offset > end:
            raise OffsetOutOfRange(
                f"{self.name}: offset {offset} is outside [{start}, {end}]")
        empty = ReadResult(memoryview(b""), offset, offset, end, start, end)
        if offset >= upper:
            return empty
        try:
            for segment in table.segments[table.floor_index(offset):]:
                if segment.base_offset >= upper:
                    break
                found = segment.read(max(offset, segment.base_offset), max_bytes, upper,
                                     segment.size)
                if found is not None:
                    view, next_offset = found
                    return ReadResult(view, offset, next_offset, end, start, end,
                                      segment.base_offset, -1)
        except (LogClosed, ValueError, OSError):
            if offset < self._log_start_offset:
                raise OffsetOutOfRange(
                    f"{self.name}: offset {offset} was deleted meanwhile (log start is now "
                    f"{self._log_start_offset})") from None
            raise
        return empty

    def batches(self, start_offset: int | None = None, upper_offset: int | None = None,
                max_bytes: int = DEFAULT_FETCH_MAX_BYTES) -> Iterator[record_batch.RecordBatch]:
        """Every batch from start_offset (default: log start) to upper_offset (default: HW)."""
        offset = self._log_start_offset if start_offset is None else start_offset
        while True:
            result = self.read(offset, max_bytes, upper_offset)
            if result.next_offset == offset:
                return
            yield from result.batches()
            offset = result.next_offset

    def batch_infos(self, start_offset: int = 0, producer_batches_only: bool = False,
                    chunk: int = 4096) -> Iterator[_ffi.BatchInfo]:
        """Header summaries of every batch whose last offset >= start_offset (C scan, no CRC);
        used to rebuild producer state."""
        table = self._table
        for segment in table.segments[table.floor_index(start_offset):]:
            size = segment.size
            if size == 0:
                continue
            found = segment.translate_offset(start_offset, size)
            if found is None:
                continue
            region = segment.region(size)
            state = _ffi.new_scan_state(found.position)
            infos = _ffi.new_batch_infos(chunk)
            while True:
                rc = _ffi.scan_segment(region, segment.base_offset, 1 << 30, state,
                                       verify_crc=False, infos=infos, infos_cap=chunk,
                                       producer_batches_only=producer_batches_only)
                yield from _ffi.batch_infos(infos, state.infos)
                if rc != _ffi.SCAN_OUTPUT_FULL:
                    break

    # -- aborted transactions (.txnindex) ---------------------------------------------------

    def append_aborted_txn(self, txn) -> None:
        """Record an aborted transaction (logstore.txn_index.AbortedTxn) in the active segment,
        the one holding its ABORT marker. Caller holds self.lock, right after the marker."""
        segment = self.active_segment
        if not segment.base_offset <= txn.last_offset < segment.next_offset:
            raise InvalidRecord(f"{self.name}: abort marker offset {txn.last_offset} is not in "
                                f"the active segment [{segment.base_offset}, "
                                f"{segment.next_offset})")
        segment.txn_index.append(txn)

    def collect_aborted_transactions(self, fetch_offset: int,
                                     upper_offset: int) -> list[tuple[int, int]]:
        """[(producer_id, first_offset)] of aborted transactions overlapping
        [fetch_offset, upper_offset), from the .txnindex of the segment holding fetch_offset
        onward (entries live in the segment of their marker), as Kafka's
        LocalLog.collectAbortedTransactions."""
        table = self._table
        found: list[tuple[int, int]] = []
        for segment in table.segments[table.floor_index(fetch_offset):]:
            # Later segments are searched too: an abort whose marker lies past upper_offset may
            # have started below it. An entry whose LSO reached upper_offset ends the search.
            entries, stop = segment.txn_index.collect(fetch_offset, upper_offset)
            found += entries
            if stop:
                break
        return found

    def txn_index_entries(self, segment_base: int | None = None) -> list:
        """Every AbortedTxn of one segment (or of all), for checks and repairs."""
        return [e for s in self._table.segments
                if segment_base is None or s.base_offset == segment_base
                for e in s.txn_index.entries()]

    def segment_holding(self, offset: int) -> LogSegment:
        table = self._table
        return table.segments[table.floor_index(offset)]

    # -- timestamps -------------------------------------------------------------------------

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """Kafka's ListOffsets: (offset, timestamp) of the first record with timestamp >=
        `timestamp`; -2 earliest, -1 latest, -3 the record with the max timestamp. None when
        no record qualifies."""
        if timestamp == EARLIEST_TIMESTAMP:
            return self._log_start_offset, -1
        if timestamp == LATEST_TIMESTAMP:
            return self._log_end_offset, -1
        if timestamp == MAX_TIMESTAMP:
            return self._max_timestamp_offset()
        for segment in self._table.segments:
            if segment.max_timestamp < timestamp or segment.size == 0:
                continue
            found = self._search_segment_for_timestamp(segment, timestamp)
            if found is not None:
                return found
        return None

    def offsets_for_times(self, timestamps: dict) -> dict:
        """{key: timestamp} -> {key: (offset, timestamp) or None}."""
        return {key: self.offset_for_timestamp(ts) for key, ts in timestamps.items()}

    def _search_segment_for_timestamp(self, segment: LogSegment,
                                      timestamp: int) -> tuple[int, int] | None:
        size = segment.size
        _, index_offset = segment.time_index.lookup(timestamp)
        _, position = segment.offset_index.lookup(max(index_offset, self._log_start_offset))
        region = segment.region(size)
        while True:
            info = _ffi.find_timestamp(region, position, timestamp)
            if info is None:
                return None
            batch = record_batch.RecordBatch(region[info.position: info.position + info.size])
            if not batch.is_control:
                for record in batch.records():
                    if record.timestamp >= timestamp and record.offset >= self._log_start_offset:
                        return record.offset, record.timestamp
            position = info.position + info.size

    def _max_timestamp_offset(self) -> tuple[int, int] | None:
        best = None
        for segment in self._table.segments:
            if segment.size and (best is None or segment.max_timestamp > best.max_timestamp):
                best = segment
        if best is None or best.max_timestamp < 0:
            return None
        return self._search_segment_for_timestamp(best, best.max_timestamp)

    # -- truncation, deletion, retention ----------------------------------------------------

    def truncate_to(self, offset: int) -> int:
        """Remove every batch whose last offset >= offset; returns the new log end offset
        (lower than `offset` when a batch straddled it: batches are removed whole)."""
        with self.lock:
            self._check_writable()
            try:
                return self._truncate_locked(offset)
            except (KafkaStorageError, OSError) as exc:
                self._go_offline(exc)      # indexes may be cut and the .log not: reopen
                raise

    def _truncate_locked(self, offset: int) -> int:
        if offset >= self._log_end_offset:
            return self._log_end_offset
        if offset <= self._log_start_offset:
            return self._truncate_fully(offset)
        table = self._table
        keep = [s for s in table.segments if s.base_offset < offset]
        drop = [s for s in table.segments if s.base_offset >= offset]
        if not keep[-1].active:
            keep[-1].make_active()
        keep[-1].truncate_to(offset)
        for segment in drop:
            segment.delete()
        self._table = _SegmentTable.of(keep)
        self._after_truncate(keep[-1].next_offset, [s.base_offset for s in drop])
        return self._log_end_offset

    def _truncate_fully(self, offset: int) -> int:
        """Delete everything and start empty at `offset` (Kafka's truncateFullyAndStartAt)."""
        old = self._table.segments
        for segment in old:
            segment.delete()
        new = LogSegment(self.directory, offset, self.config, active=True,
                         created_ms=self.time_ms())
        self._table = _SegmentTable.of([new])
        self._after_truncate(offset, [s.base_offset for s in old])
        if self._log_start_offset != offset:
            self._log_start_offset = offset
            self._persist_log_start()
        return offset

    def _after_truncate(self, new_end: int, deleted: list[int]) -> None:
        self._log_end_offset = new_end
        if new_end < self._log_start_offset:
            self._log_start_offset = new_end                          # as Kafka's truncateTo
            self._persist_log_start()
        self.recovery_point = min(self.recovery_point, new_end)
        self._dir_dirty = True
        _remove_snapshots_from(self.directory, new_end)
        if deleted:
            for listener in self._delete_listeners:
                listener(deleted)

    def delete_records_before(self, offset: int) -> int:
        """Advance the log start offset to `offset` (<= high watermark) and delete the segments
        entirely below it (Kafka's DeleteRecords). Returns the new log start offset."""
        with self.lock:
            self._check_writable()
            if offset > self.high_watermark:
                raise OffsetOutOfRange(f"{self.name}: cannot delete records before {offset}: "
                                       f"above the high watermark {self.high_watermark}")
            if offset > self._log_start_offset:
                self._log_start_offset = offset
                self._delete_segments(lambda seg, nxt: nxt is not None and nxt <= offset)
                self._persist_log_start()
            return self._log_start_offset

    def _persist_log_start(self) -> None:
        if self._standalone:
            self._write_standalone_checkpoints()
        elif self.on_log_start_change is not None:
            self.on_log_start_change(self)

    def apply_retention(self) -> int:
        """Delete old segments by retention.ms and retention.bytes; returns how many."""
        with self.lock:
            if self._closed or self._offline is not None:
                return 0
            deleted = 0
            if self.config.retention_ms >= 0:
                now = self.time_ms()
                limit = self.config.retention_ms
                deleted += self._delete_segments(
                    lambda seg, nxt: now - _largest_timestamp(seg) > limit, allow_active=True)
            if self.config.retention_bytes >= 0:
                excess = [self.size_in_bytes - self.config.retention_bytes]

                def over(seg, nxt):
                    if excess[0] - seg.size < 0:
                        return False
                    excess[0] -= seg.size
                    return True
                deleted += self._delete_segments(over)
            return deleted

    def _delete_segments(self, predicate, allow_active: bool = False) -> int:
        """Delete segments from the oldest while predicate(segment, next_base) holds and the
        whole segment is below the high watermark; the active segment only when allowed (a new
        empty one is rolled first)."""
        segments = self._table.segments
        doomed = []
        for i, segment in enumerate(segments):
            nxt = segments[i + 1].base_offset if i + 1 < len(segments) else None
            upper = nxt if nxt is not None else segment.next_offset
            if segment.size == 0 or upper > self.high_watermark or not predicate(segment, nxt):
                break
            if nxt is None and not allow_active:
                break
            doomed.append(segment)
        if not doomed:
            return 0
        if doomed[-1] is self.active_segment:
            self.roll()
        remaining = [s for s in self._table.segments if s not in doomed]
        self._table = _SegmentTable.of(remaining)
        self._log_start_offset = max(self._log_start_offset, remaining[0].base_offset)
        for segment in doomed:
            segment.delete()
        self._dir_dirty = True
        bases = [s.base_offset for s in doomed]
        for listener in self._delete_listeners:
            listener(bases)
        logger.info("%s: deleted %d segment(s) %s; log start offset now %d", self.name,
                    len(bases), bases, self._log_start_offset)
        return len(doomed)

    def delete(self) -> None:
        """Close and remove every file of this partition, and the directory."""
        with self.lock:
            if not self._closed:
                for segment in self._table.segments:
                    segment.delete()
                self._closed = True
                if self._scheduler and self._owns_scheduler:
                    self._scheduler.shutdown()
            if self._dir_lock:
                self._dir_lock.release()
        for name in os.listdir(self.directory):
            os.unlink(os.path.join(self.directory, name))
        os.rmdir(self.directory)

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"

    def __repr__(self) -> str:
        return (f"Log({self.name}, start={self._log_start_offset}, "
                f"end={self._log_end_offset}, segments={len(self._table.segments)})")


LONG_FLUSH_DISABLED = 2 ** 62
# Per-thread reusable batch buffer for Log.append: building into it and writing from it keeps the
# hot loop free of large allocations (fresh zeroed pages cost as much as the write itself).
_SCRATCH = threading.local()
SCRATCH_BYTES_INITIAL = 1 << 20


def _largest_timestamp(segment: LogSegment) -> int:
    """Kafka's LogSegment.largestTimestamp: the max record timestamp, else the file's mtime."""
    if segment.max_timestamp >= 0:
        return segment.max_timestamp
    return int(os.stat(segment.log_path).st_mtime * 1000)


def _writable(buf) -> bool:
    if isinstance(buf, bytearray):
        return True
    return isinstance(buf, memoryview) and not buf.readonly


def _set_log_append_time(buf, header: _ffi.BatchHeader, now_ms: int) -> None:
    """LOG_APPEND_TIME: set the timestamp-type bit and maxTimestamp, then re-seal the CRC."""
    fields = header._asdict()
    for name in ("length", "crc"):
        fields.pop(name)
    fields["attributes"] = header.attributes | ATTR_LOG_APPEND_TIME
    fields["max_timestamp"] = now_ms
    _ffi.seal_batch(memoryview(buf)[: header.size], _ffi.new_header(**fields))


def _topic_partition(directory: str, topic: str | None,
                     partition: int | None) -> tuple[str, int]:
    if topic is not None and partition is not None:
        return topic, partition
    name = os.path.basename(directory.rstrip("/"))
    head, sep, tail = name.rpartition("-")
    if sep and tail.isdigit():
        return head, int(tail)
    return name, 0


def _read_points(directory: str) -> tuple[int, int]:
    """(recovery point, log start offset) from a standalone log's own checkpoint files."""
    try:
        rp = checkpoint.read_checkpoint(os.path.join(directory, checkpoint.RECOVERY_POINT_FILE))
        ls = checkpoint.read_checkpoint(os.path.join(directory, checkpoint.LOG_START_OFFSET_FILE))
    except checkpoint.CorruptCheckpoint as exc:
        logger.warning("%s: %s; recovering from offset 0", directory, exc)
        return 0, 0
    return (next(iter(rp.values()), 0), next(iter(ls.values()), 0))


def _remove_snapshots_from(directory: str, offset: int) -> None:
    """Producer-state snapshots at or above a truncation point describe data that is gone."""
    for name in os.listdir(directory):
        if name.endswith(SNAPSHOT_SUFFIX):
            prefix = name[: -len(SNAPSHOT_SUFFIX)]
            if prefix.isdigit() and int(prefix) > offset:
                os.unlink(os.path.join(directory, name))
