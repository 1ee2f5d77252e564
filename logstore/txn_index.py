"""`.txnindex`: Kafka's aborted-transaction index (TransactionIndex.java, AbortedTxn.java).

Entry (34 bytes, big-endian):

    version           int16   0 (Kafka reads only the first byte; any non-zero value is rejected)
    producerId        int64
    firstOffset       int64   first offset of the aborted transaction's data
    lastOffset        int64   offset of the ABORT marker
    lastStableOffset  int64   the LSO computed when the abort completed

Invariants: written only for aborted, non-empty transactions, into the segment that holds the
marker; lastOffset strictly increases; firstOffset <= lastOffset; the file is not preallocated and
is created on the first append. The whole file is mirrored in memory (it is small: one entry per
aborted transaction), and collection for read_committed fetches runs in C over that mirror.

Thread-safety: appends are serialized by the owning log; `collect` reads an immutable bytes
snapshot, so it is safe from any thread.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple

from logstore import _ffi
from logstore.errors import CorruptIndex

ENTRY = struct.Struct(">hqqqq")
ENTRY_SIZE = 34
assert ENTRY.size == ENTRY_SIZE


class AbortedTxn(NamedTuple):
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int

    def encode(self) -> bytes:
        return ENTRY.pack(0, self.producer_id, self.first_offset, self.last_offset,
                          self.last_stable_offset)


class TransactionIndex:
    def __init__(self, path: str, base_offset: int):
        self.path = path
        self.base_offset = base_offset
        self._data = b""
        self._fd: int | None = None
        self.dirty = False           # appended or truncated since the last fsync
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            self._data = data[: len(data) - len(data) % ENTRY_SIZE]

    @property
    def entry_count(self) -> int:
        return len(self._data) // ENTRY_SIZE

    @property
    def data(self) -> bytes:
        return self._data

    def entries(self) -> list[AbortedTxn]:
        out = []
        for n in range(self.entry_count):
            _, pid, first, last, lso = ENTRY.unpack_from(self._data, n * ENTRY_SIZE)
            out.append(AbortedTxn(pid, first, last, lso))
        return out

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def append(self, txn: AbortedTxn) -> None:
        if txn.first_offset > txn.last_offset:
            raise CorruptIndex(f"{self.path}: first offset {txn.first_offset} > last "
                               f"{txn.last_offset}")
        if self.entry_count:
            last = ENTRY.unpack_from(self._data, len(self._data) - ENTRY_SIZE)[3]
            if txn.last_offset <= last:
                raise CorruptIndex(f"{self.path}: last offset {txn.last_offset} does not follow "
                                   f"{last}")
        encoded = txn.encode()
        _ffi.pwrite_all(self._file(), encoded, len(self._data), f"append {self.path}")
        self._data += encoded
        self.dirty = True

    def collect(self, fetch_offset: int, upper_offset: int) -> tuple[list[tuple[int, int]], bool]:
        """([(producer_id, first_offset)], reached_upper) for read_committed fetches."""
        return _ffi.txn_index_collect(self._data, fetch_offset, upper_offset)

    def truncate_to(self, offset: int) -> None:
        """Drop entries whose marker offset >= offset."""
        keep = self.entry_count
        while keep and ENTRY.unpack_from(self._data, (keep - 1) * ENTRY_SIZE)[3] >= offset:
            keep -= 1
        self._set_length(keep * ENTRY_SIZE)

    def reset(self) -> None:
        self._set_length(0)

    def _set_length(self, length: int) -> None:
        if length == len(self._data):
            return
        self._data = self._data[:length]
        if self._fd is not None or os.path.exists(self.path):
            _ffi.ftruncate(self._file(), length, f"truncate {self.path}")
            self.dirty = True

    def check(self) -> int | None:
        return _ffi.txn_index_check(self._data, self.base_offset)

    def flush(self) -> None:
        if self._fd is not None and self.dirty:
            self.dirty = False
            _ffi.fsync(self._fd, f"fsync {self.path}")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def delete(self) -> None:
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def rename(self, new_path: str) -> None:
        if os.path.exists(self.path):
            _ffi.rename(self.path, new_path, f"rename {self.path}")
        self.path = new_path
