"""`.timeindex`: Kafka's sparse time index (TimeIndex.java).

Entry (12 bytes, big-endian):

    timestamp       int64   the max timestamp seen in the segment up to this point
    relativeOffset  int32   offset of the batch holding that max (relative to the segment base)

Invariants: timestamps strictly increase between entries (an entry is only appended when the
timestamp grew) and offsets never decrease. An entry goes with each offset-index entry, and one
more is forced on roll/close. `is_full` is entries >= max - 1: the last slot is kept for that
forced entry. A lookup returns the largest entry with timestamp <= target, else (-1, base).

Thread-safety: see MmapIndex.
"""

from __future__ import annotations

import struct

import numpy as np

from logstore import _ffi
from logstore.errors import CorruptIndex
from logstore.mmap_index import MmapIndex

ENTRY = struct.Struct(">qi")


class TimeIndex(MmapIndex):
    ENTRY_SIZE = _ffi.TIME_INDEX_ENTRY_SIZE
    DTYPE = np.dtype([("timestamp", ">i8"), ("relative_offset", ">i4")])

    @property
    def is_full(self) -> bool:
        return self.entry_count >= self.max_bytes // self.ENTRY_SIZE - 1

    def entry(self, n: int) -> tuple[int, int]:
        """(timestamp, absolute offset) of entry n."""
        timestamp, relative = ENTRY.unpack_from(self._mmap, n * 12)
        return timestamp, self.base_offset + relative

    def last_entry(self) -> tuple[int, int]:
        if self.entry_count == 0:
            return -1, self.base_offset
        return self.entry(self.entry_count - 1)

    def maybe_append(self, timestamp: int, offset: int, skip_full_check: bool = False) -> bool:
        """Append (timestamp, offset) if the timestamp grew; True when an entry was written."""
        if not skip_full_check and self.is_full:
            raise CorruptIndex(f"{self.path}: time index is full")
        last_ts, last_offset = self.last_entry()
        if self.entry_count and offset < last_offset:
            raise CorruptIndex(
                f"{self.path}: offset {offset} is below the last entry's {last_offset}")
        if self.entry_count and timestamp <= last_ts:
            return False
        if timestamp < 0:
            return False
        if self.entry_count >= self.capacity:
            raise CorruptIndex(f"{self.path}: time index has no free slot")
        ENTRY.pack_into(self._mmap, self.entry_count * 12, timestamp, offset - self.base_offset)
        self.entry_count += 1
        return True

    def lookup(self, target_timestamp: int) -> tuple[int, int]:
        """Largest entry with timestamp <= target, else (-1, base_offset)."""
        return _ffi.time_index_lookup(*self.snapshot(), self.base_offset,
                                      target_timestamp)

    def truncate_to(self, offset: int) -> None:
        """Drop every entry with offset >= `offset`."""
        keep = self.entry_count
        while keep and self.entry(keep - 1)[1] >= offset:
            keep -= 1
        self.truncate_entries(keep)

    def check(self) -> int | None:
        return _ffi.time_index_check(*self.snapshot())
