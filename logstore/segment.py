"""One log segment: `<base>.log` with its `.index`, `.timeindex` and `.txnindex` (LogSegment.java).

Files (KAFKA_FACTS.md section 3): the base offset as a 20-digit zero-padded decimal, then the
suffix. The .log is a plain concatenation of v2 record batches with no header or padding.

Invariants held between calls:
  - `size` is the byte length of the valid batches; bytes past it (a failed write's remains) are
    never read and are overwritten by the next append or cut by recovery;
  - `next_offset` is the last offset + 1 of the last batch (base_offset when empty);
  - offset-index entries follow Kafka's rule (an entry once more than index.interval.bytes were
    appended since the last one, checked before counting the batch), time-index entries go with
    them when the max timestamp grew;
  - readers get zero-copy memoryviews of a read-only mmap of the .log. A mapping is never shrunk
    under a reader: once views may have been handed out, truncation writes the kept prefix to a
    new file and renames it into place, so old views stay valid on the old inode.

Recovery (`recover`) is one function, as Kafka's: reset the offset and time indexes, scan every
batch in C (sizes, CRCs, offsets), rebuild the index entries during the scan, cut the file at the
first invalid batch and report how many bytes were cut.

Thread-safety: appends, truncation and recovery are serialized by the owning Log's lock. `read`
may run concurrently with `append` from other threads: it snapshots `size` and maps at most that.
"""

from __future__ import annotations

import mmap
import os
import threading
from typing import Callable

from logstore import _ffi
from logstore.config import LogConfig
from logstore.errors import LogClosed, LogstoreError
from logstore.offset_index import RELATIVE_OFFSET_MAX, OffsetIndex
from logstore.time_index import TimeIndex
from logstore.txn_index import TransactionIndex

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
TXN_INDEX_SUFFIX = ".txnindex"
SNAPSHOT_SUFFIX = ".snapshot"
DELETED_SUFFIX = ".deleted"
SWAP_SUFFIX = ".swap"
CLEANED_SUFFIX = ".cleaned"
OFFSET_DIGITS = 20
SCAN_INFOS_CAP = 4096            # batch summaries handed to a recovery listener per C call
COPY_CHUNK_BYTES = 1 << 24       # copy-truncate step


def filename_prefix(offset: int) -> str:
    return f"{offset:0{OFFSET_DIGITS}d}"


def parse_base_offset(filename: str) -> int | None:
    """Base offset of a segment file name such as 00000000000000000042.log, else None."""
    prefix = filename.split(".", 1)[0]
    if len(prefix) != OFFSET_DIGITS or not prefix.isdigit():
        return None
    return int(prefix)


class LogSegment:
    def __init__(self, directory: str, base_offset: int, config: LogConfig, *, active: bool,
                 created_ms: int):
        self.directory = directory
        self.base_offset = base_offset
        self.config = config
        prefix = os.path.join(directory, filename_prefix(base_offset))
        self.log_path = prefix + LOG_SUFFIX
        self.fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT, 0o644)
        self.file_size = os.fstat(self.fd).st_size
        self.size = self.file_size
        self.indexes_missing = not (os.path.exists(prefix + INDEX_SUFFIX)
                                    and os.path.exists(prefix + TIME_INDEX_SUFFIX))
        self.offset_index = OffsetIndex(prefix + INDEX_SUFFIX, base_offset,
                                        config.segment_index_bytes, writable=False)
        self.time_index = TimeIndex(prefix + TIME_INDEX_SUFFIX, base_offset,
                                    config.segment_index_bytes, writable=False)
        self.txn_index = TransactionIndex(prefix + TXN_INDEX_SUFFIX, base_offset)
        self.active = active
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.bytes_since_last_index_entry = 0
        self.created_ms = created_ms
        self.rolling_base_timestamp: int | None = None
        self.flushed_size = self.size
        self._map: mmap.mmap | None = None
        self._map_size = 0
        self._views_shared = False
        self._closed = False
        # Guards the read mapping: held while mapping and closing, so that a concurrent delete
        # can never let a reader map a closed (and possibly reused) descriptor.
        self._map_lock = threading.Lock()
        # Held while syncing and closing (not while mapping), so an fsync never blocks readers.
        self._fd_lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"LogSegment(base={self.base_offset}, size={self.size}, "
                f"next_offset={self.next_offset})")

    # -- reading -------------------------------------------------------------------------------

    def region(self, size: int | None = None) -> memoryview:
        """A read-only view of the .log bytes [0, size) (default: all valid bytes)."""
        size = self.size if size is None else size
        if size == 0:
            return memoryview(b"")
        with self._map_lock:
            if self._closed:
                raise LogClosed(f"{self.log_path} was closed or deleted")
            if self._map is None or self._map_size < size:
                self._map = mmap.mmap(self.fd, size, access=mmap.ACCESS_READ)
                self._map_size = size
            current = self._map
        return memoryview(current)[:size]

    def translate_offset(self, offset: int, size: int | None = None) -> _ffi.BatchInfo | None:
        """The first batch whose last offset >= offset (index lookup, then a forward scan)."""
        region = self.region(size)
        _, position = self.offset_index.lookup(offset)
        if position >= len(region):
            position = 0
        return _ffi.find_offset(region, position, offset)

    def read(self, offset: int, max_bytes: int, upper_offset: int,
             size: int | None = None) -> tuple[memoryview, int] | None:
        """Whole batches from the one holding `offset`: (view, next_offset), or None when this
        segment has no batch with last offset >= offset below upper_offset."""
        size = self.size if size is None else size
        info = self.translate_offset(offset, size)
        if info is None or info.base_offset >= upper_offset:
            return None
        region = self.region(size)
        end, next_offset = _ffi.read_extent(region, info.position, max_bytes, upper_offset)
        if end == info.position:
            return None
        self._views_shared = True
        return region[info.position:end], next_offset

    def fetch_upper_bound_offset(self, position: int) -> int | None:
        return self.offset_index.upper_bound_offset(position)

    # -- appending -----------------------------------------------------------------------------

    def append(self, batch, last_offset: int, max_timestamp: int) -> int:
        """Write one batch at the end; returns its position. Raises before changing state."""
        position = self.size
        try:
            _ffi.pwrite_all(self.fd, batch, position, f"append to {self.log_path}")
        except Exception:
            self._discard_partial_write(position)
            raise
        if self.size == 0:
            self.rolling_base_timestamp = max_timestamp
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self.offset_of_max_timestamp = last_offset
        if self.bytes_since_last_index_entry > self.config.index_interval_bytes:
            self._writable_indexes()
            self.offset_index.append(last_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self.bytes_since_last_index_entry = 0
        self.bytes_since_last_index_entry += len(batch)
        self.size = position + len(batch)
        self.file_size = max(self.file_size, self.size)
        self.next_offset = last_offset + 1
        return position

    def _discard_partial_write(self, position: int) -> None:
        """Best effort: cut what a failed write left past `position`. Those bytes are never read
        (`size` did not move) and recovery would cut them anyway; this keeps the file tidy.
        Through the io table, so a simulated crash leaves the torn bytes where they are."""
        try:
            _ffi.ftruncate(self.fd, position, f"discard a failed write to {self.log_path}")
        except (OSError, LogstoreError):
            pass

    def should_roll(self, batch_size: int, max_timestamp: int, last_offset: int,
                    now_ms: int) -> bool:
        """Kafka's LogSegment.shouldRoll for an incoming batch."""
        config = self.config
        if self.size > config.segment_bytes - batch_size:
            return True
        if self.size > 0:
            if self.rolling_base_timestamp is not None and self.rolling_base_timestamp >= 0:
                waited = max_timestamp - self.rolling_base_timestamp
            else:
                waited = now_ms - self.created_ms
            if waited > config.segment_ms - config.segment_jitter_ms:
                return True
        if self.offset_index.is_full or self.time_index.is_full:
            return True
        return last_offset - self.base_offset > RELATIVE_OFFSET_MAX

    def on_become_inactive(self) -> None:
        """Roll / close: force the final time-index entry, trim both indexes to their valid
        size and sync them. Indexes this session never wrote are already trimmed: untouched."""
        if 0 <= self.max_timestamp and self.time_index.last_entry()[0] < self.max_timestamp:
            self._writable_indexes()
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp,
                                         skip_full_check=True)
        for index in (self.offset_index, self.time_index):
            if index.writable:
                index.trim()                   # shrinks and syncs
        self.txn_index.flush()
        self.active = False

    def make_active(self) -> None:
        """The last segment: appended to from now on. Its indexes become writable (extended
        to their preallocated size) only when an entry is first added, so opening and closing
        a partition nobody writes to touches no index file."""
        self.active = True

    def _writable_indexes(self) -> None:
        if not self.offset_index.writable:
            self.offset_index.make_writable()
        if not self.time_index.writable:
            self.time_index.make_writable()

    # -- durability ----------------------------------------------------------------------------

    def flush(self) -> None:
        """fdatasync the .log so that every batch appended before the call is durable.

        The offset and time indexes are not synced here: a segment past the recovery point is
        rebuilt from its .log after an unclean shutdown, and a segment's indexes are synced once
        when it rolls. The .txnindex is synced when it changed."""
        with self._fd_lock:
            if self._closed:
                return
            if self.flushed_size != self.size:
                size = self.size
                _ffi.fdatasync(self.fd, f"fdatasync {self.log_path}")
                self.flushed_size = size
            # Aborted-transaction entries cannot be rebuilt from the .log alone (they need the
            # producer state), so a changed .txnindex is synced with its data.
            self.txn_index.flush()

    def flush_all(self) -> None:
        """flush() plus an fsync of the three index files (recovery, close)."""
        self.flush()
        self.offset_index.flush()
        self.time_index.flush()
        self.txn_index.flush()

    # -- loading and recovery ------------------------------------------------------------------

    def load_clean(self) -> bool:
        """After a clean shutdown: derive next offset and max timestamp from the indexes and a
        header-only scan of the tail. False when an index fails its check (caller recovers)."""
        if self.indexes_missing and self.size > 0:
            return False
        if self.offset_index.misaligned or self.time_index.misaligned:
            return False
        if self.offset_index.check(self.size) is not None or self.time_index.check() is not None:
            return False
        if self.txn_index.check() is not None:
            return False
        last_offset, position = self.offset_index.last_entry()
        region = self.region()
        state = _ffi.new_scan_state(position)
        rc = _ffi.scan_segment(region, self.base_offset, self.config.index_interval_bytes,
                               state, verify_crc=False)
        if rc != _ffi.SCAN_END or state.position != self.size:
            return False
        if self.offset_index.entry_count:
            first = _ffi.find_offset(region, position, last_offset)
            if first is None or first.position != position or first.last_offset != last_offset:
                return False
        self.next_offset = state.next_offset if state.next_offset >= 0 else self.base_offset
        self.bytes_since_last_index_entry = self.size - position
        timestamp, offset = self.time_index.last_entry()
        self.max_timestamp, self.offset_of_max_timestamp = timestamp, offset
        if state.max_timestamp > self.max_timestamp:
            self.max_timestamp = state.max_timestamp
            self.offset_of_max_timestamp = state.offset_of_max_timestamp
        self._load_rolling_timestamp(region)
        return True

    def _load_rolling_timestamp(self, region) -> None:
        if self.size >= _ffi.BATCH_OVERHEAD:
            self.rolling_base_timestamp = _ffi.parse_header(region).max_timestamp

    def recover(self, on_batches: Callable[[list], None] | None = None) -> tuple[int, str]:
        """Rebuild the indexes from a full CRC-checked scan and cut the first invalid batch and
        everything after it. Returns (bytes truncated, reason). `on_batches` receives the
        summaries of batches with a producer id or the control bit, in order."""
        self.offset_index.make_writable()
        self.time_index.make_writable()
        self.offset_index.reset()
        self.time_index.reset()
        self.size = self.file_size = os.fstat(self.fd).st_size
        state = self._scan_rebuilding(on_batches)
        valid = state.position
        truncated = self.size - valid
        reason = _ffi.strerror(state.error) if truncated else ""
        if truncated:
            self._cut(valid)
        self.next_offset = state.next_offset if state.next_offset >= 0 else self.base_offset
        self.max_timestamp = state.max_timestamp
        self.offset_of_max_timestamp = state.offset_of_max_timestamp
        self.bytes_since_last_index_entry = state.bytes_since_index_entry
        self.txn_index.truncate_to(self.next_offset)
        self._final_time_entry()
        if not self.active:
            self.offset_index.trim()
            self.time_index.trim()
        self._load_rolling_timestamp(self.region())
        self.indexes_missing = False
        self.flushed_size = 0  # what the scan read may still be only in the page cache
        return truncated, reason

    def _scan_rebuilding(self, on_batches):
        region = self.region(self.size)
        state = _ffi.new_scan_state(0)
        infos = _ffi.new_batch_infos(SCAN_INFOS_CAP) if on_batches else None
        while True:
            rc = _ffi.scan_segment(
                region, self.base_offset, self.config.index_interval_bytes, state,
                index_out=self.offset_index.free_raw(),
                time_index_out=self.time_index.free_raw(),
                infos=infos, infos_cap=SCAN_INFOS_CAP if infos is not None else 0,
                producer_batches_only=True)
            self.offset_index.entry_count += state.index_entries
            self.time_index.entry_count += state.time_index_entries
            if on_batches and state.infos:
                on_batches(_ffi.batch_infos(infos, state.infos))
            if rc != _ffi.SCAN_OUTPUT_FULL:
                return state
            if state.index_entries == 0 and state.time_index_entries == 0 and state.infos == 0:
                # An index is full and the scan cannot place its next entry: grow it.
                self.offset_index.ensure_capacity(self.offset_index.capacity * 2 + 1)
                self.time_index.ensure_capacity(self.time_index.capacity * 2 + 1)

    def _final_time_entry(self) -> None:
        if self.max_timestamp >= 0:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp,
                                         skip_full_check=True)

    # -- truncation and deletion ---------------------------------------------------------------

    def truncate_to(self, offset: int) -> int:
        """Remove every batch whose last offset >= offset; returns bytes removed. A batch that
        straddles `offset` is removed whole (batches are the unit of storage)."""
        info = self.translate_offset(offset) if self.size else None
        if info is None:
            return 0
        removed = self.size - info.position
        self._writable_indexes()           # so that close trims the dropped entries off
        self.offset_index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        self.txn_index.truncate_to(offset)
        self._cut(info.position)
        self.next_offset = info.base_offset
        self._recompute_after_truncate()
        return removed

    def _recompute_after_truncate(self) -> None:
        """Max timestamp and index bookkeeping after a cut, from a header scan."""
        state = _ffi.new_scan_state(0)
        _ffi.scan_segment(self.region(), self.base_offset, self.config.index_interval_bytes,
                          state, verify_crc=False)
        self.max_timestamp = state.max_timestamp
        self.offset_of_max_timestamp = state.offset_of_max_timestamp
        last_offset, position = self.offset_index.last_entry()
        self.bytes_since_last_index_entry = self.size - position
        if self.size == 0:
            self.rolling_base_timestamp = None

    def _cut(self, length: int) -> None:
        """Shrink the .log to `length` bytes without invalidating views handed to readers."""
        if self._views_shared:
            self._copy_truncate(length)
        else:
            with self._map_lock:
                self._map = None
                self._map_size = 0
            _ffi.ftruncate(self.fd, length, f"truncate {self.log_path}")
        self.size = self.file_size = length
        self.flushed_size = min(self.flushed_size, length)

    def _copy_truncate(self, length: int) -> None:
        swap = self.log_path + SWAP_SUFFIX
        fd = os.open(swap, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            # The kept prefix is written through the io table (faults and power cuts see it).
            kept = self.region(length)
            for start in range(0, length, COPY_CHUNK_BYTES):
                _ffi.pwrite_all(fd, kept[start:start + COPY_CHUNK_BYTES], start,
                                f"write {swap}")
            del kept
            _ffi.fsync(fd, f"fsync {swap}")
            _ffi.rename(swap, self.log_path, f"rename {swap}")
        except BaseException:
            os.close(fd)
            raise
        with self._fd_lock, self._map_lock:
            old = self.fd
            self.fd = fd
            os.close(old)
            self._map = None
            self._map_size = 0
        self._views_shared = False

    def close(self) -> None:
        if self.active:
            self.on_become_inactive()
        self.offset_index.close()
        self.time_index.close()
        self.txn_index.close()
        self._close_fd()

    def _close_fd(self) -> None:
        with self._fd_lock, self._map_lock:
            self._closed = True
            self._map = None
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1

    def abandon(self) -> None:
        """Drop mappings and descriptors with no trim or sync (see Log.abandon)."""
        self.offset_index.close()
        self.time_index.close()
        self.txn_index.close()
        self._close_fd()

    def delete(self) -> None:
        """Remove the segment's files: rename the .log to .deleted first, so a crash halfway
        leaves a name recovery knows to discard."""
        deleted = self.log_path + DELETED_SUFFIX
        self._close_fd()
        _ffi.rename(self.log_path, deleted, f"rename {self.log_path}")
        self.offset_index.delete()
        self.time_index.delete()
        self.txn_index.delete()
        os.unlink(deleted)

    @property
    def last_offset(self) -> int:
        return self.next_offset - 1
