"""`.index`: Kafka's sparse offset index (OffsetIndex.java).

Entry (8 bytes, big-endian):

    relativeOffset  int32   offset - segment base offset (the LAST offset of the indexed batch)
    position        int32   byte position in the .log where that batch starts

Invariants: relative offsets and positions strictly increase; positions lie inside the .log. An
entry is added when more than index.interval.bytes were appended since the last one, checked
before the current batch is counted (so the first batch of a segment never gets one). A lookup
returns the largest entry <= target, or (base offset, 0); the caller then scans forward in the
.log for the first batch whose last offset >= target.

Thread-safety: see MmapIndex; the owning segment serializes appends.
"""

from __future__ import annotations

import struct

import numpy as np

from logstore import _ffi
from logstore.errors import CorruptIndex
from logstore.mmap_index import MmapIndex

ENTRY = struct.Struct(">ii")
RELATIVE_OFFSET_MAX = 2147483647


class OffsetIndex(MmapIndex):
    ENTRY_SIZE = _ffi.OFFSET_INDEX_ENTRY_SIZE
    DTYPE = np.dtype([("relative_offset", ">i4"), ("position", ">i4")])

    def append(self, offset: int, position: int) -> None:
        relative = offset - self.base_offset
        if not 0 <= relative <= RELATIVE_OFFSET_MAX:
            raise CorruptIndex(f"{self.path}: offset {offset} does not fit base {self.base_offset}")
        if self.entry_count:
            last_offset, last_position = self.entry(self.entry_count - 1)
            if offset <= last_offset or position <= last_position:
                raise CorruptIndex(
                    f"{self.path}: entry ({offset}, {position}) does not follow "
                    f"({last_offset}, {last_position})")
        if self.entry_count >= self.capacity:
            raise CorruptIndex(f"{self.path}: index is full ({self.entry_count} entries)")
        ENTRY.pack_into(self._mmap, self.entry_count * 8, relative, position)
        self.entry_count += 1

    def entry(self, n: int) -> tuple[int, int]:
        """(absolute offset, position) of entry n."""
        relative, position = ENTRY.unpack_from(self._mmap, n * 8)
        return self.base_offset + relative, position

    def last_entry(self) -> tuple[int, int]:
        if self.entry_count == 0:
            return self.base_offset, 0
        return self.entry(self.entry_count - 1)

    def lookup(self, target_offset: int) -> tuple[int, int]:
        """Largest entry with offset <= target, else (base_offset, 0)."""
        return _ffi.offset_index_lookup(*self.snapshot(), self.base_offset,
                                        target_offset)

    def upper_bound_offset(self, position: int) -> int | None:
        """Offset of the first entry whose position >= `position` (fetchUpperBoundOffset)."""
        return _ffi.offset_index_upper_bound(*self.snapshot(), self.base_offset,
                                             position)

    def truncate_to(self, offset: int) -> None:
        """Drop every entry with offset >= `offset`."""
        keep = self.entry_count
        while keep and self.entry(keep - 1)[0] >= offset:
            keep -= 1
        self.truncate_entries(keep)

    def check(self, log_size: int) -> int | None:
        """None when sane, else the index of the first bad entry."""
        return _ffi.offset_index_check(*self.snapshot(), log_size)
