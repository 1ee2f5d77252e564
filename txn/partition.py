"""`TxnPartition`: one partition's Log with Kafka's producer state on top (Partition + the
producer-state half of UnifiedLog).

What it adds to logstore.Log:
  - idempotent and transactional appends checked against the producer state (epochs,
    sequences, the 5-batch duplicate window; a duplicate returns the original offsets);
  - KIP-890 part 1: the first transactional batch of a producer on this partition must be
    verified with the transaction coordinator; a VerificationGuard taken before the append and
    cleared by a marker stops a late batch from opening a transaction the coordinator has
    already finished (a "hanging transaction");
  - transaction markers (COMMIT/ABORT control batches) and, for non-empty aborts, the
    `.txnindex` entry in the segment holding the marker;
  - the last stable offset (LSO) and read_committed fetches, which stop at the LSO and carry the
    aborted transactions overlapping the returned range;
  - producer-state snapshots on roll and close, loaded and replayed on open; after an unclean
    shutdown the recovered segments are replayed from a snapshot at or below the first of them,
    and their aborted-transaction entries are rebuilt.

Lock order: the coordinator may call write_marker while holding its own lock; this class never
calls the coordinator while holding the log lock (verification runs before it is taken), and
marker listeners run on the broker's completion thread, never under any of these locks.

Thread-safety: all methods are thread-safe; appends and markers hold `log.lock`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from logstore import _ffi, record_batch
from logstore.errors import OffsetOutOfRange
from logstore.log import DEFAULT_FETCH_MAX_BYTES, Log
from logstore.txn_index import AbortedTxn
from txn.errors import InvalidTxnState
from txn.producer_state import AppendOrigin, CompletedTxn, DuplicateBatch, ProducerStateManager

logger = logging.getLogger("txn.partition")

READ_UNCOMMITTED = "read_uncommitted"
READ_COMMITTED = "read_committed"
ISOLATION_LEVELS = (READ_UNCOMMITTED, READ_COMMITTED)
ATTR_TRANSACTIONAL = 0x10


@dataclass(frozen=True)
class AppendResult:
    first_offset: int
    last_offset: int
    log_append_time_ms: int
    records_count: int
    duplicate: bool = False


@dataclass(frozen=True)
class FetchResult:
    records: memoryview
    fetch_offset: int
    next_offset: int
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    aborted_transactions: list[tuple[int, int]] | None

    def batches(self):
        return record_batch.iter_batches(self.records)


class _VerificationGuard:
    """KIP-890's single-use token: valid from verification until the producer's next marker."""

    __slots__ = ("producer_id", "producer_epoch")

    def __init__(self, producer_id: int, producer_epoch: int):
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch


class TxnPartition:
    def __init__(self, broker, log: Log):
        self.broker = broker
        self.log = log
        self.topic = log.topic
        self.partition = log.partition
        self.name = log.name
        self.producers = ProducerStateManager(
            log.directory, log.name,
            producer_id_expiration_ms=broker.config["producer.id.expiration.ms"],
            time_ms=broker.time_ms)
        self._guards: dict[int, _VerificationGuard] = {}
        self._guards_lock = threading.Lock()
        self._marker_listeners = []
        with log.lock:
            self._load(log.recovery_report.recovered_from_offset)
            log.add_roll_listener(self._on_roll)
            log.add_delete_listener(self._on_segments_deleted)

    # -- loading ----------------------------------------------------------------------------

    def _load(self, recovered_from: int | None) -> None:
        """Newest valid snapshot, then replay the log after it (rebuilding the .txnindex of
        segments that recovery scanned, whose entries may not have reached the disk)."""
        log = self.log
        limit = log.log_end_offset if recovered_from is None else min(log.log_end_offset,
                                                                      recovered_from)
        start = self.producers.load(log.log_start_offset, limit)
        rebuilt = {s.base_offset for s in log.segments
                   if recovered_from is not None and s.base_offset >= recovered_from}
        for segment in log.segments:
            if segment.base_offset in rebuilt:
                segment.txn_index.reset()
        replayed = 0
        for info in log.batch_infos(start, producer_batches_only=True):
            if info.last_offset < start:
                continue
            completed = self.producers.replay(info)
            replayed += 1
            if completed is not None and completed.is_aborted:
                self._repair_txn_index(completed)
        if replayed or rebuilt:
            logger.info("%s: producer state loaded from offset %d, %d batch(es) replayed",
                        self.name, start, replayed)

    def _repair_txn_index(self, completed) -> None:
        """Make sure the .txnindex holds the entry of an abort found by replay."""
        segment = self.log.segment_holding(completed.last_offset)
        entries = segment.txn_index.entries()
        if any(e.last_offset == completed.last_offset for e in entries):
            return
        if entries and entries[-1].last_offset > completed.last_offset:
            logger.warning("%s: aborted txn at %d missing from %s out of order; not repaired",
                           self.name, completed.last_offset, segment.txn_index.path)
            return
        lso = self.producers.last_stable_offset(completed)
        segment.txn_index.append(AbortedTxn(completed.producer_id, completed.first_offset,
                                            completed.last_offset, lso))

    def _on_roll(self, new_base: int) -> None:
        self.producers.take_snapshot(new_base)

    def _on_segments_deleted(self, _bases: list[int]) -> None:
        self.producers.delete_snapshots_below(self.log.log_start_offset)

    # -- appends ----------------------------------------------------------------------------

    def append(self, batch, *, origin: str = AppendOrigin.CLIENT, durable: bool = False,
               validate: bool = True) -> AppendResult:
        """Append one record batch after the producer-state checks (see the module doc)."""
        buf = batch if _writable(batch) else bytearray(batch)
        if validate and origin == AppendOrigin.CLIENT:
            record_batch.validate_for_append(buf, self.log.config.max_message_bytes)
        elif validate:
            _ffi.validate_batch(buf, f"{self.name}: {origin} append")   # framing and CRC
        header = _ffi.parse_header(buf)
        producer_id = header.producer_id
        if producer_id < 0:
            info = self.log.append_batch(buf, validate=False, durable=durable)
            self.broker.notify_data()
            return AppendResult(info.first_offset, info.last_offset, info.log_append_time_ms,
                                info.records_count)
        transactional = bool(header.attributes & ATTR_TRANSACTIONAL)
        guard = self._verify(producer_id, header.producer_epoch, transactional, origin)
        with self.log.lock:
            prepared = self.producers.prepare_append(
                producer_id, header.producer_epoch, header.base_sequence,
                header.last_offset_delta, transactional, header.max_timestamp, origin,
                first_offset=self.log.log_end_offset)
            if isinstance(prepared, DuplicateBatch):
                append_time = prepared.timestamp if self.log.config.log_append_time else -1
                return AppendResult(prepared.first_offset, prepared.last_offset, append_time,
                                    header.records_count, duplicate=True)
            if transactional and guard is not None:
                self._check_guard(producer_id, guard)
            info = self.log.append_batch(buf, validate=False)
            self.producers.update(prepared, info.first_offset, info.last_offset)
        self.broker.notify_data()
        if durable:
            self.log.flush(info.last_offset + 1)
        return AppendResult(info.first_offset, info.last_offset, info.log_append_time_ms,
                            info.records_count)

    def _verify(self, producer_id: int, producer_epoch: int, transactional: bool,
                origin: str) -> _VerificationGuard | None:
        """KIP-890 part 1, outside the log lock: a producer without an open transaction here
        must be in an Ongoing transaction that includes this partition."""
        if not transactional or origin == AppendOrigin.REPLICATION:
            return None
        if not self.broker.config["transaction.partition.verification.enable"]:
            return None
        if producer_id in self.producers.ongoing_transactions():
            return None
        coordinator = self.broker.transaction_coordinator
        if not coordinator.verify_partition(producer_id, producer_epoch,
                                            (self.topic, self.partition)):
            raise InvalidTxnState(
                f"{self.name}: producer {producer_id} epoch {producer_epoch} wrote a "
                "transactional batch to a partition that is not part of its ongoing "
                "transaction")
        guard = _VerificationGuard(producer_id, producer_epoch)
        with self._guards_lock:
            self._guards[producer_id] = guard
        return guard

    def _check_guard(self, producer_id: int, guard: _VerificationGuard) -> None:
        """Under the log lock: the guard must still be the producer's (no marker since)."""
        if producer_id in self.producers.ongoing_transactions():
            return
        with self._guards_lock:
            current = self._guards.get(producer_id)
        if current is not guard:
            raise InvalidTxnState(
                f"{self.name}: producer {producer_id}'s transaction ended while its batch was "
                "being verified; the batch would open a transaction nobody will finish")

    # -- markers ----------------------------------------------------------------------------

    def write_marker(self, producer_id: int, producer_epoch: int, commit: bool,
                     coordinator_epoch: int, *, durable: bool = True) -> int:
        """Append a COMMIT or ABORT marker for producer_id; returns its offset."""
        control = record_batch.COMMIT if commit else record_batch.ABORT
        now = self.broker.time_ms()
        batch = record_batch.build_control_batch(control, producer_id, producer_epoch,
                                                 coordinator_epoch, now)
        with self.log.lock:
            self.producers.prepare_marker(producer_id, producer_epoch, coordinator_epoch,
                                          AppendOrigin.COORDINATOR,
                                          offset=self.log.log_end_offset)
            info = self.log.append_batch(batch, validate=False)
            offset = info.first_offset
            first = self.producers.ongoing_transactions().get(producer_id)
            if first is not None and not commit:
                # Indexed before the producer state completes the transaction, as Kafka does:
                # fetches take no lock, and one that sees the LSO past the transaction must
                # also see it is aborted.
                ending = CompletedTxn(producer_id, first, offset, True)
                self.log.append_aborted_txn(AbortedTxn(
                    producer_id, first, offset, self.producers.last_stable_offset(ending)))
            self.producers.complete_marker(producer_id, producer_epoch, coordinator_epoch,
                                           commit, offset, now)
            with self._guards_lock:
                self._guards.pop(producer_id, None)
        self.broker.notify_data()
        if durable:
            self.log.flush(offset + 1)
        for listener in self._marker_listeners:
            self.broker.run_completion(listener, producer_id, commit, offset)
        return offset

    def add_marker_listener(self, listener) -> None:
        """listener(producer_id, commit, marker_offset), run on the broker's completion thread
        after each marker (Kafka's scheduleHandleTxnCompletion)."""
        self._marker_listeners.append(listener)

    # -- offsets ----------------------------------------------------------------------------

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def first_unstable_offset(self) -> int | None:
        return self.producers.first_unstable_offset()

    @property
    def last_stable_offset(self) -> int:
        """Kafka's LSO: the first offset not yet decided (an open transaction's first offset),
        never above the high watermark nor below the log start offset. Taken under the log
        lock: an append moves the high watermark before the producer state learns of the
        transaction it opens, and an abort marker ends its transaction before the .txnindex
        entry is written; in either gap the LSO would count the transaction as decided."""
        with self.log.lock:
            hw = self.log.high_watermark
            first = self.producers.first_unstable_offset()
            if first is None or first >= hw:
                return hw
            return max(first, self.log.log_start_offset)

    # -- fetch ------------------------------------------------------------------------------

    def fetch(self, offset: int, max_bytes: int = DEFAULT_FETCH_MAX_BYTES,
              isolation: str = READ_UNCOMMITTED) -> FetchResult:
        """Whole batches from `offset`: up to the high watermark (read_uncommitted) or the LSO
        (read_committed, with the aborted transactions overlapping the returned range)."""
        if isolation not in ISOLATION_LEVELS:
            raise ValueError(f"isolation must be one of {ISOLATION_LEVELS}, got {isolation!r}")
        committed = isolation == READ_COMMITTED
        lso = self.last_stable_offset
        upper = lso if committed else self.log.high_watermark
        if offset > self.log.log_end_offset:
            raise OffsetOutOfRange(f"{self.name}: offset {offset} is above the log end offset "
                                   f"{self.log.log_end_offset}")
        result = self.log.read(offset, max_bytes, upper)
        aborted = None
        if committed:
            aborted = (self.log.collect_aborted_transactions(offset, result.next_offset)
                       if result.next_offset > offset else [])
        return FetchResult(result.records, offset, result.next_offset, result.high_watermark,
                           lso, result.log_start_offset, aborted)

    # -- producer state views and maintenance -----------------------------------------------

    def ongoing_transactions(self) -> dict[int, int]:
        with self.log.lock:
            return dict(self.producers.ongoing_transactions())

    def producer_states(self) -> list:
        with self.log.lock:
            return list(self.producers.entries())

    def expire_producer_ids(self) -> list[int]:
        with self.log.lock:
            return self.producers.remove_expired(self.broker.time_ms())

    def truncate_to(self, offset: int) -> int:
        """Truncate the log and rebuild the producer state for what remains."""
        with self.log.lock:
            new_end = self.log.truncate_to(offset)
            self._load(None)               # load() drops snapshots above the new end
            return new_end

    def close(self) -> None:
        with self.log.lock:
            if not self.log.closed and not self.log.offline:
                self.producers.take_snapshot(self.log.log_end_offset)


def _writable(buf) -> bool:
    if isinstance(buf, bytearray):
        return True
    return isinstance(buf, memoryview) and not buf.readonly
