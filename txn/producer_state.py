"""Per-partition producer state: Kafka's ProducerStateManager, ProducerAppendInfo and snapshots.

What it stores. For every producer id that wrote to the partition: its epoch, the epoch of the
last transaction coordinator that sent it a marker, its last timestamp, the first offset of its
open transaction (-1: none), and the metadata of its last NUM_BATCHES_TO_RETAIN (5) batches
(first/last sequence, last offset, offset delta, timestamp), which is the duplicate window of the
idempotent producer. Alongside: the ongoing transactions (pid -> first offset), from which the
first unstable offset and the .txnindex entry's last stable offset are computed.

How it is used (validation apart from mutation, as Kafka's ProducerAppendInfo):

    info = psm.prepare_append(pid, epoch, base_seq, last_offset_delta, txn, max_ts, origin)
    if isinstance(info, DuplicateBatch): answer with info's original offsets, write nothing
    else: append the batch to the log, then psm.update(info, first_offset, last_offset)

    psm.prepare_marker(pid, epoch, coordinator_epoch, origin)     # raises, changes nothing
    append the marker, then completed = psm.complete_marker(...)  # CompletedTxn or None

`prepare_*` raise OutOfOrderSequence / InvalidProducerEpoch / InvalidTxnState /
TransactionCoordinatorFenced and never change state; `update` and `complete_marker` never raise
for protocol reasons. Origins: CLIENT (full checks, duplicate window), COORDINATOR (transactional
offset commits and markers: epoch only, no sequences), REPLICATION (log recovery: a stale epoch or
coordinator epoch is only logged). Batches with producer id -1 are not tracked.

On disk: `<20-digit offset>.snapshot` in the partition directory, Kafka's format byte for byte
(ProducerStateManager.writeSnapshot; all integers big-endian). The offset in the name is the log
end offset the snapshot covers: replaying the log from it reproduces the state.

    off  size  field
      0     2  version int16 = 1 (the only valid version)
      2     4  crc uint32: CRC-32C of bytes [6, EOF)
      6     4  entry count int32
     10  46*n  entries, each:
                 +0   8  producerId int64
                 +8   2  producerEpoch int16
                +10   4  lastSequence int32         (-1: no data batch)
                +14   8  lastOffset int64           (-1: no data batch, e.g. markers only)
                +22   4  offsetDelta int32          (lastOffset - firstOffset of the last batch)
                +26   8  timestamp int64            (the producer's last timestamp)
                +34   4  coordinatorEpoch int32
                +38   8  currentTxnFirstOffset int64 (-1: no open transaction)

Only the latest batch of each producer is saved, so after a reload the duplicate window holds
one batch until new appends fill it (as in Kafka). Entries are written in producer-id order.
A snapshot is written to `<name>.tmp`, fsynced and renamed (logstore.fsutil.atomic_write), so a
reader sees a whole file or none. A snapshot that fails to parse (short, wrong version, CRC
mismatch, count disagreeing with the size) is corrupt: `load` deletes it and tries the next older.

Invariants (checked by `check_invariants`):
  - `ongoing_transactions()` holds exactly the producers whose entry has an open transaction,
    with the same first offset;
  - an entry retains at most NUM_BATCHES_TO_RETAIN batches, all from its current epoch (an
    epoch change clears them), in append order;
  - `prepare_append` / `prepare_marker` do not mutate; a ProducerAppendInfo is applied by
    `update` to the entry it was validated against (asserted);
  - snapshot files are immutable once written; a snapshot above the log end offset or below the
    log start offset is never loaded.

Thread-safety: none. The owning partition serializes every call (prepare, the log append and
update together) under its log lock; the module keeps no global mutable state. The one
tolerated exception is an unlocked `ongoing_transactions()` peek (KIP-890 verification runs
outside the lock): it copies its dict in one step, so it sees a consistent, possibly stale view.
"""

from __future__ import annotations

import copy
import logging
import os
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, NamedTuple

from logstore import _ffi, fsutil
from logstore.errors import LogstoreError
from logstore.scheduler import wall_ms
from logstore.segment import SNAPSHOT_SUFFIX, filename_prefix
from txn.errors import (InvalidProducerEpoch, InvalidTxnState, OutOfOrderSequence,
                        TransactionCoordinatorFenced)

logger = logging.getLogger("txn.producer_state")

NUM_BATCHES_TO_RETAIN = 5                   # ProducerStateEntry.NUM_BATCHES_TO_RETAIN
NO_PRODUCER_ID = -1                         # RecordBatch.NO_PRODUCER_ID
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_TIMESTAMP = -1
NO_COORDINATOR_EPOCH = -1                   # ProducerStateEntry.empty()
NO_TXN_FIRST_OFFSET = -1                    # snapshot: no open transaction
NO_LAST_OFFSET = -1                         # snapshot: no data batch (KAFKA-9144)
INT32_MAX = 2**31 - 1                       # sequences wrap from here to 0
INT16_MAX = 2**15 - 1
PRODUCER_ID_EXPIRATION_MS_DEFAULT = 86_400_000   # producer.id.expiration.ms (KIP-854)
CONTROL_TYPE_ABORT = 0                      # ControlRecordType
CONTROL_TYPE_COMMIT = 1

SNAPSHOT_VERSION = 1
SNAPSHOT_VERSION_OFFSET = 0
SNAPSHOT_CRC_OFFSET = SNAPSHOT_VERSION_OFFSET + 2
SNAPSHOT_COUNT_OFFSET = SNAPSHOT_CRC_OFFSET + 4
SNAPSHOT_CRC_START = SNAPSHOT_COUNT_OFFSET       # the CRC covers [6, EOF)
SNAPSHOT_ENTRIES_OFFSET = SNAPSHOT_COUNT_OFFSET + 4
SNAPSHOT_HEADER = struct.Struct(">hIi")
SNAPSHOT_ENTRY = struct.Struct(">qhiqiqiq")
SNAPSHOT_CRC = struct.Struct(">I")
SNAPSHOT_TMP_SUFFIX = SNAPSHOT_SUFFIX + ".tmp"    # fsutil.atomic_write's temporary name
assert SNAPSHOT_HEADER.size == SNAPSHOT_ENTRIES_OFFSET == 10
assert SNAPSHOT_ENTRY.size == 46
assert NUM_BATCHES_TO_RETAIN >= 1


class AppendOrigin:
    """Who asks for an append, which decides how much is validated (Kafka's AppendOrigin)."""

    CLIENT = "CLIENT"               # producers: epoch, sequence, duplicate window, txn state
    COORDINATOR = "COORDINATOR"     # txn offset commits and markers: epoch (and txn state) only
    REPLICATION = "REPLICATION"     # recovery / replay: stale epochs are only logged
    ALL = (CLIENT, COORDINATOR, REPLICATION)


class CorruptSnapshot(LogstoreError):
    """A .snapshot file fails its version, CRC-32C or size checks (CorruptSnapshotException)."""

    name = "CORRUPT_SNAPSHOT"


# ------------------------------------------------------------------------------------------------
# Sequence arithmetic (DefaultRecordBatch.incrementSequence / decrementSequence)


def increment_sequence(sequence: int, increment: int) -> int:
    """sequence + increment, wrapping past INT32_MAX to 0."""
    if sequence > INT32_MAX - increment:
        return increment - (INT32_MAX - sequence) - 1
    return sequence + increment


def decrement_sequence(sequence: int, decrement: int) -> int:
    """The inverse of increment_sequence."""
    if sequence < decrement:
        return INT32_MAX - (decrement - sequence) + 1
    return sequence - decrement


def in_sequence(last_seq: int, next_seq: int) -> bool:
    """next_seq directly follows last_seq (ProducerAppendInfo.inSequence)."""
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


# ------------------------------------------------------------------------------------------------
# Value types


class BatchMetadata(NamedTuple):
    """One retained batch. first_seq = decrement_sequence(last_seq, offset_delta) (Kafka)."""

    first_seq: int
    last_seq: int
    last_offset: int
    offset_delta: int
    timestamp: int

    @classmethod
    def of(cls, last_seq: int, last_offset: int, offset_delta: int,
           timestamp: int) -> BatchMetadata:
        return cls(decrement_sequence(last_seq, offset_delta), last_seq, last_offset,
                   offset_delta, timestamp)

    @property
    def first_offset(self) -> int:
        return self.last_offset - self.offset_delta


class DuplicateBatch(NamedTuple):
    """A retried batch already in the log: answer with these original offsets, write nothing."""

    first_offset: int
    last_offset: int
    timestamp: int


class CompletedTxn(NamedTuple):
    """A transaction ended by a marker; last_offset is the marker's offset."""

    producer_id: int
    first_offset: int
    last_offset: int
    is_aborted: bool


def _new_batches() -> deque:
    return deque(maxlen=NUM_BATCHES_TO_RETAIN)


@dataclass
class ProducerStateEntry:
    """The state of one producer id on this partition (ProducerStateEntry)."""

    producer_id: int
    producer_epoch: int = NO_PRODUCER_EPOCH
    coordinator_epoch: int = NO_COORDINATOR_EPOCH
    last_timestamp: int = NO_TIMESTAMP
    current_txn_first_offset: int = NO_TXN_FIRST_OFFSET
    batches: deque = field(default_factory=_new_batches)

    def __post_init__(self) -> None:
        if self.batches.maxlen != NUM_BATCHES_TO_RETAIN:
            self.batches = deque(self.batches, maxlen=NUM_BATCHES_TO_RETAIN)

    @property
    def is_empty(self) -> bool:
        """No data batch retained (new producer, markers only, or just bumped epoch)."""
        return not self.batches

    @property
    def first_seq(self) -> int:
        return self.batches[0].first_seq if self.batches else NO_SEQUENCE

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    @property
    def last_data_offset(self) -> int:
        return self.batches[-1].last_offset if self.batches else NO_LAST_OFFSET

    @property
    def last_offset_delta(self) -> int:
        return self.batches[-1].offset_delta if self.batches else 0

    @property
    def has_open_txn(self) -> bool:
        return self.current_txn_first_offset != NO_TXN_FIRST_OFFSET

    def maybe_update_epoch(self, producer_epoch: int) -> None:
        """A different epoch starts afresh: the retained batches belong to the old one."""
        if producer_epoch != self.producer_epoch:
            self.batches.clear()
            self.producer_epoch = producer_epoch

    def add_batch(self, producer_epoch: int, batch: BatchMetadata) -> None:
        self.maybe_update_epoch(producer_epoch)
        self.batches.append(batch)            # the deque's maxlen drops the oldest
        self.last_timestamp = batch.timestamp
        assert len(self.batches) <= NUM_BATCHES_TO_RETAIN

    def find_duplicate(self, producer_epoch: int, first_seq: int,
                       last_seq: int) -> BatchMetadata | None:
        """The retained batch with exactly this sequence range at the current epoch."""
        if producer_epoch != self.producer_epoch:
            return None
        for batch in self.batches:
            if batch.first_seq == first_seq and batch.last_seq == last_seq:
                return batch
        return None

    def copy(self) -> ProducerStateEntry:
        return copy.deepcopy(self)


@dataclass(frozen=True)
class ProducerAppendInfo:
    """A validated data batch, to be applied by ProducerStateManager.update once the log has
    assigned its offsets. `basis` is the entry's (epoch, last sequence, txn first offset, last
    data offset) at validation time: update asserts that nothing changed in between."""

    producer_id: int
    producer_epoch: int
    first_seq: int
    last_seq: int
    last_offset_delta: int
    is_transactional: bool
    max_timestamp: int
    origin: str
    starts_transaction: bool
    basis: tuple = ()

    @property
    def is_tracked(self) -> bool:
        return self.producer_id != NO_PRODUCER_ID


def _basis(entry: ProducerStateEntry | None) -> tuple:
    if entry is None:
        return (None,)
    return (entry.producer_epoch, entry.last_seq, entry.current_txn_first_offset,
            entry.last_data_offset)


# ------------------------------------------------------------------------------------------------
# Snapshot codec


def snapshot_path(directory: str, offset: int) -> str:
    return os.path.join(directory, filename_prefix(offset) + SNAPSHOT_SUFFIX)


def snapshot_offset(name: str) -> int | None:
    """The offset of a `<digits>.snapshot` file name, else None."""
    if not name.endswith(SNAPSHOT_SUFFIX):
        return None
    prefix = name[: -len(SNAPSHOT_SUFFIX)]
    return int(prefix) if prefix.isdigit() else None


def list_snapshots(directory: str) -> list[tuple[int, str]]:
    """(offset, path) of every snapshot file in the directory, oldest first."""
    found = []
    for name in os.listdir(directory):
        offset = snapshot_offset(name)
        if offset is not None:
            found.append((offset, os.path.join(directory, name)))
    return sorted(found)


def encode_snapshot(entries: Iterable[ProducerStateEntry]) -> bytes:
    """The snapshot file's bytes, entries in the order given."""
    entries = list(entries)
    out = bytearray(SNAPSHOT_ENTRIES_OFFSET + SNAPSHOT_ENTRY.size * len(entries))
    SNAPSHOT_HEADER.pack_into(out, 0, SNAPSHOT_VERSION, 0, len(entries))
    for i, e in enumerate(entries):
        SNAPSHOT_ENTRY.pack_into(
            out, SNAPSHOT_ENTRIES_OFFSET + i * SNAPSHOT_ENTRY.size, e.producer_id,
            e.producer_epoch, e.last_seq, e.last_data_offset, e.last_offset_delta,
            e.last_timestamp, e.coordinator_epoch, e.current_txn_first_offset)
    crc = _ffi.crc32c(memoryview(out)[SNAPSHOT_CRC_START:])
    SNAPSHOT_CRC.pack_into(out, SNAPSHOT_CRC_OFFSET, crc)
    return bytes(out)


def _entry_from_fields(producer_id: int, epoch: int, last_seq: int, last_offset: int,
                       offset_delta: int, timestamp: int, coordinator_epoch: int,
                       txn_first_offset: int) -> ProducerStateEntry:
    entry = ProducerStateEntry(producer_id, epoch, coordinator_epoch, timestamp,
                               txn_first_offset if txn_first_offset >= 0 else NO_TXN_FIRST_OFFSET)
    if last_offset >= 0:
        entry.batches.append(BatchMetadata.of(last_seq, last_offset, offset_delta, timestamp))
    return entry


def decode_snapshot(data, what: str = "snapshot") -> list[ProducerStateEntry]:
    """The entries of a snapshot file's bytes; CorruptSnapshot when a check fails."""
    data = memoryview(data)
    if len(data) < SNAPSHOT_ENTRIES_OFFSET:
        raise CorruptSnapshot(f"{what}: {len(data)} bytes, shorter than the "
                              f"{SNAPSHOT_ENTRIES_OFFSET}-byte header")
    version, stored_crc, count = SNAPSHOT_HEADER.unpack_from(data)
    if version != SNAPSHOT_VERSION:
        raise CorruptSnapshot(f"{what}: unknown snapshot version {version}, "
                              f"expected {SNAPSHOT_VERSION}")
    computed_crc = _ffi.crc32c(data[SNAPSHOT_CRC_START:])
    if stored_crc != computed_crc:
        raise CorruptSnapshot(f"{what}: CRC is no longer valid: stored crc {stored_crc:#010x}, "
                              f"computed crc {computed_crc:#010x}")
    expected_size = SNAPSHOT_ENTRIES_OFFSET + SNAPSHOT_ENTRY.size * count
    if count < 0 or expected_size != len(data):
        raise CorruptSnapshot(f"{what}: declares {count} entries of {SNAPSHOT_ENTRY.size} bytes "
                              f"but holds {len(data) - SNAPSHOT_ENTRIES_OFFSET} bytes of them")
    body = data[SNAPSHOT_ENTRIES_OFFSET:]
    return [_entry_from_fields(*fields) for fields in SNAPSHOT_ENTRY.iter_unpack(body)]


def read_snapshot(path: str) -> list[ProducerStateEntry]:
    """Read and decode one snapshot file (OSError when unreadable)."""
    with open(path, "rb") as f:
        return decode_snapshot(f.read(), path)


def _delete_file(path: str, reason: str) -> None:
    logger.info("Deleting producer snapshot %s: %s", path, reason)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ------------------------------------------------------------------------------------------------
# Validation (pure: raises or logs, never mutates)


def _check_origin(origin: str) -> None:
    if origin not in AppendOrigin.ALL:
        raise ValueError(f"unknown append origin {origin!r}, expected one of {AppendOrigin.ALL}")


def _check_epoch(entry: ProducerStateEntry, producer_epoch: int, origin: str,
                 where: str) -> None:
    """A batch or marker older than the producer's epoch is from a fenced instance."""
    if producer_epoch >= entry.producer_epoch:
        return
    message = (f"Epoch of {where} is {producer_epoch}, which is smaller than the last seen "
               f"epoch {entry.producer_epoch}")
    if origin == AppendOrigin.REPLICATION:
        logger.warning(message)
    else:
        raise InvalidProducerEpoch(message)


def _check_sequence(entry: ProducerStateEntry, producer_epoch: int, first_seq: int,
                    where: str) -> None:
    """Kafka's checkSequence for one batch (CLIENT appends only)."""
    current_epoch = entry.producer_epoch
    if producer_epoch != current_epoch:
        if first_seq != 0 and current_epoch != NO_PRODUCER_EPOCH:
            raise OutOfOrderSequence(
                f"Invalid sequence number for new epoch of {where}: {producer_epoch} (request "
                f"epoch), {first_seq} (seq. number), {current_epoch} (current producer epoch); "
                f"expected sequence 0 at a new epoch")
        return
    if current_epoch == NO_PRODUCER_EPOCH:
        return                    # no known epoch (KIP-360): any sequence is accepted
    last_seq = entry.last_seq
    if not in_sequence(last_seq, first_seq):
        raise OutOfOrderSequence(
            f"Out of order sequence number for {where} (epoch {producer_epoch}): {first_seq} "
            f"(incoming seq. number), {last_seq} (current end sequence number), expected "
            f"{increment_sequence(last_seq, 1)}")


def _check_coordinator_epoch(entry: ProducerStateEntry, coordinator_epoch: int, origin: str,
                             where: str) -> None:
    if entry.coordinator_epoch <= coordinator_epoch:
        return
    message = (f"Invalid coordinator epoch for {where}: {coordinator_epoch} (zombie), "
               f"{entry.coordinator_epoch} (current); producer epoch {entry.producer_epoch}")
    if origin == AppendOrigin.REPLICATION:
        logger.warning(message)
    else:
        raise TransactionCoordinatorFenced(message)


# ------------------------------------------------------------------------------------------------
# The manager


class ProducerStateManager:
    """Producer ids of one partition, their ongoing transactions, and the .snapshot files."""

    def __init__(self, directory: str, name: str, *,
                 producer_id_expiration_ms: int = PRODUCER_ID_EXPIRATION_MS_DEFAULT,
                 time_ms: Callable[[], int] = wall_ms):
        if producer_id_expiration_ms < 0:
            raise ValueError(f"producer.id.expiration.ms must be >= 0, "
                             f"got {producer_id_expiration_ms}")
        self.directory = directory
        self.name = name
        self.producer_id_expiration_ms = producer_id_expiration_ms
        self._time_ms = time_ms
        self._producers: dict[int, ProducerStateEntry] = {}
        self._ongoing: dict[int, int] = {}         # pid -> first offset of its open txn
        self._log_start_offset = 0

    def __repr__(self) -> str:
        return (f"ProducerStateManager({self.name}, producers={len(self._producers)}, "
                f"ongoing={len(self._ongoing)})")

    def _where(self, producer_id: int, offset: int | None) -> str:
        at = "at the log end" if offset is None else f"at offset {offset}"
        return f"producer {producer_id} {at} in partition {self.name}"

    # -- data batches ---------------------------------------------------------------------------

    def prepare_append(self, producer_id: int, producer_epoch: int, base_sequence: int,
                       last_offset_delta: int, is_transactional: bool, max_timestamp: int,
                       origin: str, *, first_offset: int | None = None
                       ) -> ProducerAppendInfo | DuplicateBatch:
        """Validate a data batch against the producer's state without changing it.

        Returns a DuplicateBatch (CLIENT only) when the batch is a retry of one in the window,
        else a ProducerAppendInfo for `update`. `first_offset`, when known, only improves the
        error messages. Raises InvalidProducerEpoch, OutOfOrderSequence, InvalidTxnState."""
        _check_origin(origin)
        assert last_offset_delta >= 0, last_offset_delta
        last_seq = (NO_SEQUENCE if base_sequence == NO_SEQUENCE
                    else increment_sequence(base_sequence, last_offset_delta))
        if producer_id == NO_PRODUCER_ID:
            return ProducerAppendInfo(producer_id, producer_epoch, base_sequence, last_seq,
                                      last_offset_delta, is_transactional, max_timestamp,
                                      origin, False)
        current = self._producers.get(producer_id)
        entry = current if current is not None else ProducerStateEntry(producer_id)
        if origin == AppendOrigin.CLIENT:
            duplicate = entry.find_duplicate(producer_epoch, base_sequence, last_seq)
            if duplicate is not None:
                return DuplicateBatch(duplicate.first_offset, duplicate.last_offset,
                                      duplicate.timestamp)
        where = self._where(producer_id, first_offset)
        _check_epoch(entry, producer_epoch, origin, where)
        if origin == AppendOrigin.CLIENT:
            _check_sequence(entry, producer_epoch, base_sequence, where)
        if entry.has_open_txn and not is_transactional:
            raise InvalidTxnState(
                f"Expected transactional write from {where} (epoch {producer_epoch}): its "
                f"transaction started at offset {entry.current_txn_first_offset} is still open")
        return ProducerAppendInfo(producer_id, producer_epoch, base_sequence, last_seq,
                                  last_offset_delta, is_transactional, max_timestamp, origin,
                                  is_transactional and not entry.has_open_txn, _basis(current))

    def update(self, info: ProducerAppendInfo, first_offset: int, last_offset: int, *,
               timestamp: int | None = None) -> None:
        """Apply a validated batch after the log appended it at [first_offset, last_offset].
        `timestamp` overrides the batch's max timestamp (LOG_APPEND_TIME topics)."""
        assert isinstance(info, ProducerAppendInfo), info
        if not info.is_tracked:
            return
        assert 0 <= first_offset <= last_offset, (first_offset, last_offset)
        current = self._producers.get(info.producer_id)
        assert _basis(current) == info.basis, (
            f"producer {info.producer_id} changed between prepare_append and update")
        entry = current if current is not None else ProducerStateEntry(info.producer_id)
        batch = BatchMetadata.of(info.last_seq, last_offset, last_offset - first_offset,
                                 info.max_timestamp if timestamp is None else timestamp)
        entry.add_batch(info.producer_epoch, batch)
        if info.starts_transaction:
            assert not entry.has_open_txn and info.producer_id not in self._ongoing
            entry.current_txn_first_offset = first_offset
            self._ongoing[info.producer_id] = first_offset
        self._producers[info.producer_id] = entry

    # -- transaction markers --------------------------------------------------------------------

    def prepare_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int,
                       origin: str, *, offset: int | None = None) -> None:
        """Validate an end-transaction marker without changing state: InvalidProducerEpoch when
        its epoch is older than the producer's, TransactionCoordinatorFenced when its
        coordinator epoch is older than the last seen (REPLICATION: both only logged)."""
        _check_origin(origin)
        assert producer_id != NO_PRODUCER_ID, "a marker always carries a producer id"
        entry = self._producers.get(producer_id) or ProducerStateEntry(producer_id)
        where = self._where(producer_id, offset)
        _check_epoch(entry, producer_epoch, origin, where)
        _check_coordinator_epoch(entry, coordinator_epoch, origin, where)

    def complete_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int,
                        commit: bool, marker_offset: int, timestamp: int) -> CompletedTxn | None:
        """Apply a marker written at marker_offset (after prepare_marker). Returns the ended
        transaction, or None when the producer had none open (an empty transaction, KAFKA-10702).
        A higher epoch (KIP-890 part 2 bumps it at every transaction end) clears the retained
        batches, so the producer's next batch must start at sequence 0."""
        assert producer_id != NO_PRODUCER_ID and marker_offset >= 0
        entry = self._producers.get(producer_id)
        if entry is None:
            entry = self._producers[producer_id] = ProducerStateEntry(producer_id)
        completed = None
        if entry.has_open_txn:
            first_offset = self._ongoing.pop(producer_id)
            assert first_offset == entry.current_txn_first_offset, (first_offset, entry)
            assert first_offset < marker_offset, (first_offset, marker_offset)
            completed = CompletedTxn(producer_id, entry.current_txn_first_offset, marker_offset,
                                     not commit)
        entry.maybe_update_epoch(producer_epoch)
        entry.coordinator_epoch = coordinator_epoch
        entry.current_txn_first_offset = NO_TXN_FIRST_OFFSET
        entry.last_timestamp = timestamp
        return completed

    # -- transactions and offsets ---------------------------------------------------------------

    def ongoing_transactions(self) -> dict[int, int]:
        """{producer id: first offset} of the open transactions, oldest first. (The dict is
        copied in one step first, so a caller peeking without the lock gets a consistent view.)"""
        ongoing = self._ongoing.copy()
        return dict(sorted(ongoing.items(), key=lambda item: item[1]))

    def first_unstable_offset(self) -> int | None:
        """The first offset of the oldest open transaction, or None (firstUndecidedOffset)."""
        return min(self._ongoing.values(), default=None)

    def last_stable_offset(self, completed: CompletedTxn) -> int:
        """The LSO to store in the .txnindex entry of `completed`: the first offset of the
        oldest open transaction of another producer, else the marker offset + 1."""
        others = [first for pid, first in self._ongoing.items() if pid != completed.producer_id]
        return min(others, default=completed.last_offset + 1)

    # -- recovery -------------------------------------------------------------------------------

    def replay(self, batch: _ffi.BatchInfo) -> CompletedTxn | None:
        """Apply one batch read back from the log (REPLICATION semantics: stale epochs are
        logged, not raised). Returns the CompletedTxn when it was a marker ending one."""
        if batch.producer_id == NO_PRODUCER_ID:
            return None
        if batch.is_control:
            return self._replay_marker(batch)
        info = self.prepare_append(batch.producer_id, batch.producer_epoch, batch.base_sequence,
                                   batch.last_offset - batch.base_offset,
                                   batch.is_transactional, batch.max_timestamp,
                                   AppendOrigin.REPLICATION, first_offset=batch.base_offset)
        assert isinstance(info, ProducerAppendInfo)
        self.update(info, batch.base_offset, batch.last_offset)
        return None

    def _replay_marker(self, batch: _ffi.BatchInfo) -> CompletedTxn | None:
        if batch.records_count == 0:
            return None           # the cleaner removed the whole transaction
        if batch.control_type not in (CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT):
            logger.warning("%s: control batch of type %d at offset %d from producer %d is not a "
                           "transaction marker; ignored", self.name, batch.control_type,
                           batch.base_offset, batch.producer_id)
            return None
        self.prepare_marker(batch.producer_id, batch.producer_epoch, batch.coordinator_epoch,
                            AppendOrigin.REPLICATION, offset=batch.base_offset)
        return self.complete_marker(batch.producer_id, batch.producer_epoch,
                                    batch.coordinator_epoch,
                                    batch.control_type == CONTROL_TYPE_COMMIT,
                                    batch.base_offset, batch.max_timestamp)

    # -- expiry ---------------------------------------------------------------------------------

    def _is_expired(self, entry: ProducerStateEntry, now_ms: int) -> bool:
        return (not entry.has_open_txn
                and now_ms - entry.last_timestamp >= self.producer_id_expiration_ms)

    def remove_expired(self, now_ms: int) -> list[int]:
        """Forget producers idle for producer.id.expiration.ms (never one with an open
        transaction; marker timestamps count). Returns their ids."""
        expired = [pid for pid, e in self._producers.items() if self._is_expired(e, now_ms)]
        for pid in expired:
            del self._producers[pid]
        return expired

    # -- inspection -----------------------------------------------------------------------------

    def entries(self) -> list[ProducerStateEntry]:
        """Copies of every producer's entry, by producer id."""
        return [self._producers[pid].copy() for pid in sorted(self._producers)]

    def entry(self, producer_id: int) -> ProducerStateEntry | None:
        """A copy of one producer's entry, or None when it is unknown."""
        found = self._producers.get(producer_id)
        return None if found is None else found.copy()

    def check_invariants(self) -> None:
        """Assert the module docstring's invariants (tests and strict mode)."""
        open_txns = {pid: e.current_txn_first_offset
                     for pid, e in self._producers.items() if e.has_open_txn}
        assert open_txns == self._ongoing, (open_txns, self._ongoing)
        for pid, entry in self._producers.items():
            assert entry.producer_id == pid
            assert len(entry.batches) <= NUM_BATCHES_TO_RETAIN
            offsets = [b.last_offset for b in entry.batches]
            assert offsets == sorted(offsets), (pid, offsets)

    # -- snapshots ------------------------------------------------------------------------------

    def snapshot_offsets(self) -> list[int]:
        """Offsets of the snapshot files on disk, oldest first."""
        return [offset for offset, _ in list_snapshots(self.directory)]

    def take_snapshot(self, offset: int) -> str | None:
        """Write `<offset>.snapshot` (the state covers the log below `offset`) atomically and
        durably. Skipped, returning None, when that snapshot exists; else returns its path."""
        assert offset >= 0, offset
        path = snapshot_path(self.directory, offset)
        if os.path.exists(path):
            return None
        entries = [self._producers[pid] for pid in sorted(self._producers)]
        data = encode_snapshot(entries)
        assert len(data) == SNAPSHOT_ENTRIES_OFFSET + SNAPSHOT_ENTRY.size * len(entries)
        fsutil.atomic_write(path, data)
        logger.info("%s: wrote producer snapshot at offset %d with %d producer ids",
                    self.name, offset, len(entries))
        return path

    def delete_snapshots_below(self, offset: int) -> int:
        """Delete the snapshot files of offsets < offset (log retention). Returns how many."""
        doomed = [path for off, path in list_snapshots(self.directory) if off < offset]
        for path in doomed:
            _delete_file(path, f"below offset {offset}")
        return len(doomed)

    def _clear(self) -> None:
        self._producers.clear()
        self._ongoing.clear()

    def _load_entry(self, entry: ProducerStateEntry) -> None:
        self._ongoing.pop(entry.producer_id, None)
        self._producers[entry.producer_id] = entry
        if entry.has_open_txn:
            self._ongoing[entry.producer_id] = entry.current_txn_first_offset

    def _remove_leftovers(self, log_start: int, log_end: int) -> list[tuple[int, str]]:
        """Delete interrupted writes and snapshots outside [log_start, log_end]; return the
        remaining snapshots, newest first."""
        for name in os.listdir(self.directory):
            if name.endswith(SNAPSHOT_TMP_SUFFIX):
                _delete_file(os.path.join(self.directory, name), "an interrupted write")
        usable = []
        for offset, path in list_snapshots(self.directory):
            if offset > log_end:
                _delete_file(path, f"above the log end offset {log_end}")
            elif offset < log_start:
                _delete_file(path, f"below the log start offset {log_start}")
            else:
                usable.append((offset, path))
        return usable[::-1]

    def load(self, log_start: int, log_end: int) -> int:
        """Reset the state to the newest valid snapshot in [log_start, log_end] and return the
        offset from which the caller must replay the log up to log_end (that snapshot's offset,
        else log_start). Corrupt or unreadable snapshots are deleted with a warning and the
        next older one is tried; expired producers are dropped."""
        assert 0 <= log_start <= log_end, (log_start, log_end)
        self._clear()
        self._log_start_offset = log_start
        for offset, path in self._remove_leftovers(log_start, log_end):
            try:
                loaded = read_snapshot(path)
            except (CorruptSnapshot, OSError) as exc:
                logger.warning("%s: failed to load producer snapshot %s: %s", self.name, path,
                               exc)
                _delete_file(path, "corrupt or unreadable")
                continue
            now_ms = self._time_ms()
            for entry in loaded:
                if not self._is_expired(entry, now_ms):
                    self._load_entry(entry)
            logger.info("%s: loaded producer state from %s (%d producer ids)", self.name, path,
                        len(self._producers))
            return offset
        return log_start

    def truncate_to(self, offset: int, *, log_start: int | None = None) -> int:
        """The log was truncated to end at `offset`: delete snapshots above it and reload.
        Returns the offset to replay the log from (as `load`). `log_start` defaults to the one
        of the last load, lowered to `offset` if the truncation went below it."""
        start = self._log_start_offset if log_start is None else log_start
        return self.load(min(start, offset), offset)
