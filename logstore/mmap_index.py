"""The common machinery of Kafka's sparse indexes (AbstractIndex.java): a preallocated file of
fixed-size big-endian entries, mmap-backed, exposed as a numpy structured array.

Life cycle, as Kafka's:
  - a new index file is preallocated to roundDown(max_bytes, entry_size) (sparse on Linux);
  - an existing file is opened read-only with entries = its length / entry_size; when the active
    segment first adds an entry it is extended back to the maximum size so appends have room
    (an untouched partition's indexes are never rewritten);
  - on roll and close the file is trimmed to entries * entry_size (`trim`), so a closed index file
    holds exactly its valid entries;
  - lookups run in C (logstore._ffi) directly over the mapped bytes.

Entries live in `self.entries` (numpy, dtype given by the subclass, e.g. [('relative_offset',
'>i4'), ('position', '>i4')]) and `self.raw` (uint8 view of the same bytes, for C). Both are views
of the mmap; `_unmap` drops them before closing the mmap.

Indexes carry no checksum; they are derived data. `check()` enforces their invariants and the
segment rebuilds an index from the log whenever the check fails or the file is missing.

Thread-safety: none inside; the owning segment serializes appends and remaps under the log's
lock. A lookup from another thread takes one `snapshot()` (bytes and the count they hold), so it
never reads past the bytes it holds even while the owner remaps; the old mapping stays alive
while that snapshot references it (`_unmap` leaves a mapping with live views to its last
reference instead of failing).
"""

from __future__ import annotations

import mmap
import os

import numpy as np

from logstore import _ffi


def round_down(value: int, multiple: int) -> int:
    return value - value % multiple


class MmapIndex:
    ENTRY_SIZE = 0  # set by subclasses
    DTYPE: np.dtype | None = None

    def __init__(self, path: str, base_offset: int, max_bytes: int, writable: bool):
        assert self.ENTRY_SIZE > 0
        self.path = path
        self.base_offset = base_offset
        self.max_bytes = round_down(max(max_bytes, self.ENTRY_SIZE), self.ENTRY_SIZE)
        self.entry_count = 0
        self._mmap: mmap.mmap | None = None
        self.raw: np.ndarray = np.zeros(0, dtype=np.uint8)
        self.entries: np.ndarray = np.zeros(0, dtype=self.DTYPE)
        self.writable = False
        self.misaligned = False      # the file's size was not a multiple of the entry size
        self._open(writable)

    # -- file and mapping ------------------------------------------------------------------

    def _open(self, writable: bool) -> None:
        exists = os.path.exists(self.path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if exists:
                self.entry_count = size // self.ENTRY_SIZE
                self.misaligned = size % self.ENTRY_SIZE != 0
            if writable:
                self.max_bytes = max(self.max_bytes, round_down(size, self.ENTRY_SIZE))
                if size != self.max_bytes:
                    _ffi.ftruncate(fd, self.max_bytes, f"resize {self.path}")
                size = self.max_bytes
            self._map(fd, size, writable)
        finally:
            os.close(fd)
        self.writable = writable

    def _map(self, fd: int, size: int, writable: bool) -> None:
        self._unmap()
        if size == 0:
            return
        access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
        self._mmap = mmap.mmap(fd, size, access=access)
        self.raw = np.frombuffer(self._mmap, dtype=np.uint8)
        self.entries = np.frombuffer(self._mmap, dtype=self.DTYPE,
                                     count=size // self.ENTRY_SIZE)

    def _unmap(self) -> None:
        old, self._mmap = self._mmap, None
        self.raw = np.zeros(0, dtype=np.uint8)
        self.entries = np.zeros(0, dtype=self.DTYPE)
        if old is not None:
            try:
                old.close()
            except BufferError:
                pass    # a reader's view still holds it: unmapped with the view's last reference

    @property
    def capacity(self) -> int:
        """Entries the mapped file can hold."""
        return len(self.entries)

    @property
    def is_full(self) -> bool:
        return self.entry_count >= self.max_bytes // self.ENTRY_SIZE

    def snapshot(self) -> tuple[np.ndarray, int]:
        """(valid entries' bytes, entries they hold), consistent with each other for a lookup
        in C. A reader on another thread may run while the owner remaps (make_writable, trim),
        so the count comes from the bytes taken, never from a second read of entry_count."""
        raw = self.raw[: self.entry_count * self.ENTRY_SIZE]
        return raw, len(raw) // self.ENTRY_SIZE

    def free_raw(self) -> np.ndarray:
        """Writable bytes after the last entry (where a scan writes rebuilt entries)."""
        return self.raw[self.entry_count * self.ENTRY_SIZE:]

    def make_writable(self) -> None:
        """Extend back to max_bytes and map read-write (the segment became active)."""
        if not self.writable:
            self._unmap()
            self._open(writable=True)

    def trim(self) -> None:
        """Shrink the file to its valid entries, sync it, and map it read-only (roll / close):
        a sealed segment's index is durable from here on."""
        fd = os.open(self.path, os.O_RDWR)
        try:
            if self._mmap is not None and self.writable:
                self._mmap.flush()
            self._unmap()
            _ffi.ftruncate(fd, self.entry_count * self.ENTRY_SIZE, f"trim {self.path}")
            _ffi.fsync(fd, f"fsync {self.path}")
            self._map(fd, self.entry_count * self.ENTRY_SIZE, writable=False)
        finally:
            os.close(fd)
        self.writable = False

    def flush(self) -> None:
        """msync the mapping and fsync the file so a flushed segment's index is durable. A
        read-only index was not written this session: nothing to sync."""
        if not self.writable:
            return
        if self._mmap is not None:
            self._mmap.flush()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            _ffi.fsync(fd, f"fsync {self.path}")
        finally:
            os.close(fd)

    def reset(self) -> None:
        """Drop every entry (recovery rebuilds them)."""
        self.entry_count = 0

    def truncate_entries(self, count: int) -> None:
        assert 0 <= count <= self.entry_count
        self.entry_count = count

    def ensure_capacity(self, entries: int) -> None:
        """Grow a writable index so it can hold `entries` (foreign segments with larger indexes)."""
        if entries <= self.capacity:
            return
        self.max_bytes = entries * self.ENTRY_SIZE
        self._unmap()
        self._open(writable=True)

    def close(self) -> None:
        self._unmap()

    def delete(self) -> None:
        self._unmap()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def rename(self, new_path: str) -> None:
        _ffi.rename(self.path, new_path, f"rename {self.path}")
        self.path = new_path
