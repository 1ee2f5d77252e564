"""The transactional half of the embedded Producer: librdkafka's transaction manager.

States and transitions are librdkafka's (rd_kafka_txn_state_t, same names in messages):

    Init --init_transactions--> WaitPID --InitProducerId--> Ready
    Ready --begin_transaction--> InTransaction
    InTransaction --commit_transaction--> BeginCommit --flush, EndTxn(commit)--> Ready
    InTransaction | AbortableError --abort_transaction--> BeginAbort --purge, EndTxn--> Ready
    InTransaction | BeginCommit --a failed delivery or offset commit--> AbortableError
    any --fencing, invalid timeout, a coordinator's fatal answer--> FatalError

  - init_transactions: InitProducerId(transactional.id, transaction.timeout.ms), which fences
    an older instance with the same id (its next call gets the fatal _FENCED).
  - Partitions join the transaction from the sender thread (AddPartitionsToTxn) before their
    first batch in it; send_offsets_to_transaction does AddOffsetsToTxn then TxnOffsetCommit
    with the consumer's group metadata (generation and member id are checked, KIP-447).
  - commit_transaction flushes (every record delivered and fsynced), then EndTxn(commit). EndTxn
    returns the bumped epoch (transaction version 2, KIP-890 part 2): sequences restart at 0.
    It then waits for the broker's completion thread, so the transaction's offsets are applied
    and its data and offsets are visible to read_committed consumers when commit returns.
  - abort_transaction purges queued records (their reports carry _PURGE_QUEUE), waits for the
    ones in flight, then EndTxn(abort). A transaction that wrote nothing ends without EndTxn
    on commit (librdkafka sends none either).
  - Errors: misuse raises _STATE ("Operation not valid in state ..."); a non-transactional
    producer gets _NOT_CONFIGURED; abortable errors have txn_requires_abort() True; fencing
    (PRODUCER_FENCED / INVALID_PRODUCER_EPOCH) is the fatal _FENCED, as librdkafka normalises
    it; retriable coordinator answers are retried until the call's timeout (_TIMED_OUT,
    retriable: call again).

Thread-safety: the API methods are meant for one application thread at a time (librdkafka
serialises them too); the sender thread calls add_partitions and delivery_failed; `_lock`
guards the state and error.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref

from logstore.errors import LogstoreError
from txn import errors as txn_errors
from txn.client_timeouts import deadline_after, time_left
from txn.kafka_error import KafkaError, KafkaException, error_from_exception
from txn.message import ConsumerGroupMetadata, TopicPartition

logger = logging.getLogger("txn.producer")

INIT = "Init"
WAIT_PID = "WaitPID"
READY = "Ready"
IN_TRANSACTION = "InTransaction"
BEGIN_COMMIT = "BeginCommit"
BEGIN_ABORT = "BeginAbort"
ABORTABLE_ERROR = "AbortableError"
FATAL_ERROR = "FatalError"

RETRIABLE = (txn_errors.ConcurrentTransactions, txn_errors.CoordinatorLoadInProgress,
             txn_errors.CoordinatorNotAvailable, txn_errors.NotCoordinator)
RETRY_BACKOFF_S = 0.005
RETRY_BACKOFF_MAX_S = 0.1


def _error(code: int, reason: str, **flags) -> KafkaException:
    return KafkaException(KafkaError(code, reason, **flags))


class Transactions:
    """One Producer's transaction state; `enabled` when transactional.id is set."""

    def __init__(self, producer, transactional_id: str | None, timeout_ms: int):
        # Weak: no reference cycle, so a Producer dropped without close() goes at once.
        self.producer = weakref.proxy(producer)
        self.transactional_id = transactional_id
        self.enabled = transactional_id is not None
        self.timeout_ms = timeout_ms
        self.state = INIT
        self.error: KafkaError | None = None        # the abortable or fatal error
        self.accumulators: set = set()               # partitions added to this transaction
        self.offsets_added = False
        self._lock = threading.Lock()

    # -- state ------------------------------------------------------------------------------

    def may_produce(self) -> bool:
        return self.state == IN_TRANSACTION

    def in_transaction(self) -> bool:
        return self.state in (IN_TRANSACTION, BEGIN_COMMIT, BEGIN_ABORT, ABORTABLE_ERROR)

    def _require(self, *states: str) -> None:
        """librdkafka's rd_kafka_txn_require_state."""
        if not self.enabled:
            raise _error(KafkaError._NOT_CONFIGURED, "The Transactional API requires "
                                                     "transactional.id to be configured")
        with self._lock:
            state, error = self.state, self.error
        if state in states:
            return
        if state == FATAL_ERROR:
            raise KafkaException(KafkaError(error.code(), error.str(), fatal=True))
        if state == ABORTABLE_ERROR:
            raise KafkaException(KafkaError(error.code(), error.str(),
                                            txn_requires_abort=True))
        raise _error(KafkaError._STATE, f"Operation not valid in state {state}")

    def _set_state(self, state: str) -> None:
        with self._lock:
            if self.state != FATAL_ERROR:
                self.state = state
            self.producer._blocked = self.state != IN_TRANSACTION

    def fatal(self, error: KafkaError) -> None:
        with self._lock:
            self.state, self.error = FATAL_ERROR, error
            self.producer._blocked = True

    def delivery_failed(self, error: KafkaError) -> None:
        """A record of the transaction failed (sender thread): the transaction must abort."""
        with self._lock:
            if self.state not in (IN_TRANSACTION, BEGIN_COMMIT) or error.fatal():
                return
            self.state = ABORTABLE_ERROR
            self.error = KafkaError(error.code(), error.str(), txn_requires_abort=True)
            self.producer._blocked = True
        logger.info("transactional id %r: transaction must be aborted: %s",
                    self.transactional_id, error.str())
        self.producer._purge_queued(KafkaError(KafkaError._PURGE_QUEUE))

    def _fail(self, exc: BaseException, *, abortable: bool = True) -> KafkaException:
        """The KafkaException for a coordinator error: fatal ones end the producer, the
        others make the transaction abortable (when `abortable`)."""
        error = error_from_exception(exc, transactional=True)
        if error.fatal():
            self.producer._set_fatal(error)
            return KafkaException(error)
        if abortable:
            with self._lock:
                if self.state != FATAL_ERROR:
                    self.state = ABORTABLE_ERROR
                    self.error = KafkaError(error.code(), error.str(), txn_requires_abort=True)
                    self.producer._blocked = True
                    error = self.error
        return KafkaException(error)

    def _retrying(self, call, deadline: float | None, what: str):
        """call() until it does not raise a retriable coordinator error, or the deadline."""
        backoff = RETRY_BACKOFF_S
        while True:
            try:
                return call()
            except RETRIABLE as exc:
                if deadline is not None and time.monotonic() + backoff > deadline:
                    raise _error(KafkaError._TIMED_OUT, f"{what} timed out: {exc}",
                                 retriable=True) from exc
                time.sleep(backoff)
                backoff = min(RETRY_BACKOFF_MAX_S, backoff * 2)

    # -- the API ----------------------------------------------------------------------------

    def init(self, timeout) -> None:
        self._require(INIT, WAIT_PID)
        self._set_state(WAIT_PID)
        coordinator = self.producer._broker.transaction_coordinator
        try:
            pid, epoch = self._retrying(
                lambda: coordinator.init_producer_id(self.transactional_id, self.timeout_ms),
                deadline_after(timeout), "init_transactions")
        except LogstoreError as exc:
            raise self._fail(exc, abortable=False) from exc
        self._set_producer(pid, epoch)
        self._set_state(READY)

    def _set_producer(self, pid: int, epoch: int) -> None:
        self.producer._pid, self.producer._epoch = pid, epoch
        self.producer._reset_sequences()

    def begin(self) -> None:
        self._require(READY)
        self._clear()
        self._set_state(IN_TRANSACTION)

    def _clear(self) -> None:
        for acc in self.accumulators:
            acc.in_txn = False
        self.accumulators = set()
        self.offsets_added = False
        with self._lock:
            if self.state != FATAL_ERROR:
                self.error = None

    def add_partitions(self, jobs) -> None:
        """Sender thread: AddPartitionsToTxn for the partitions new to the transaction."""
        with self._lock:
            state, error = self.state, self.error
        if state not in (IN_TRANSACTION, BEGIN_COMMIT):
            raise KafkaException(error if state in (ABORTABLE_ERROR, FATAL_ERROR) else
                                 KafkaError(KafkaError._STATE, "records produced outside a "
                                            f"transaction (state {state})"))
        new = list({job.acc: None for job in jobs if not job.acc.in_txn})
        if not new:
            return
        coordinator = self.producer._broker.transaction_coordinator
        producer = self.producer
        self._retrying(lambda: coordinator.add_partitions_to_txn(
            self.transactional_id, producer._pid, producer._epoch,
            [(acc.topic, acc.partition) for acc in new]), None, "AddPartitionsToTxn")
        for acc in new:
            acc.in_txn = True
            self.accumulators.add(acc)

    def send_offsets(self, positions, group_metadata, timeout) -> None:
        self._require(IN_TRANSACTION)
        if not isinstance(group_metadata, ConsumerGroupMetadata):
            raise TypeError("expected group_metadata to be a ConsumerGroupMetadata (from "
                            f"Consumer.consumer_group_metadata()), not "
                            f"{type(group_metadata).__name__}")
        offsets = _offsets(positions)
        if not offsets:
            return
        deadline = deadline_after(timeout)
        broker = self.producer._broker
        pid, epoch = self.producer._pid, self.producer._epoch
        group = group_metadata
        try:
            self._retrying(lambda: broker.transaction_coordinator.add_offsets_to_txn(
                self.transactional_id, pid, epoch, group.group_id), deadline,
                "send_offsets_to_transaction")
            self.offsets_added = True
            results = self._retrying(lambda: broker.group_coordinator.txn_offset_commit(
                self.transactional_id, group.group_id, pid, epoch, group.generation_id,
                group.member_id, offsets, group.group_instance_id), deadline,
                "send_offsets_to_transaction")
        except LogstoreError as exc:
            raise self._fail(exc) from exc
        failed = [error for error in results.values() if error is not None]
        if failed:
            raise self._fail(failed[0])

    def commit(self, timeout) -> None:
        self._require(IN_TRANSACTION, BEGIN_COMMIT)
        self._set_state(BEGIN_COMMIT)
        deadline = deadline_after(timeout)
        left = self.producer.flush(-1 if deadline is None else time_left(deadline))
        if left:
            raise _error(KafkaError._TIMED_OUT, f"commit_transaction timed out with {left} "
                         "records not yet delivered; call it again", retriable=True)
        self._require(BEGIN_COMMIT)          # a delivery failure made it abortable
        if self.accumulators or self.offsets_added:
            self._end(True, deadline)
        self._clear()
        self._set_state(READY)

    def abort(self, timeout) -> None:
        self._require(IN_TRANSACTION, BEGIN_ABORT, ABORTABLE_ERROR)
        had_error = self.state == ABORTABLE_ERROR
        self._set_state(BEGIN_ABORT)
        deadline = deadline_after(timeout)
        producer = self.producer
        producer._purge_queued(KafkaError(KafkaError._PURGE_QUEUE))
        if not producer._wait_sender_idle(deadline):
            raise _error(KafkaError._TIMED_OUT, "abort_transaction timed out waiting for "
                         "records in flight; call it again", retriable=True)
        producer._serve()
        if self.accumulators or self.offsets_added or had_error:
            self._end(False, deadline)
        self._clear()
        self._set_state(READY)

    def _end(self, commit: bool, deadline: float | None) -> None:
        """EndTxn; the epoch it returns (TV2) becomes the producer's, sequences restart."""
        broker = self.producer._broker
        pid, epoch = self.producer._pid, self.producer._epoch
        what = "commit_transaction" if commit else "abort_transaction"
        try:
            pid, epoch = self._retrying(lambda: broker.transaction_coordinator.end_txn(
                self.transactional_id, pid, epoch, commit), deadline, what)
        except LogstoreError as exc:
            raise self._fail(exc) from exc
        self._set_producer(pid, epoch)
        broker.wait_for_completions(time_left(deadline))


def _offsets(positions) -> dict:
    """{(topic, partition): OffsetAndMetadata} of the positions with a valid offset
    (librdkafka ignores the others)."""
    from txn.group_coordinator import OffsetAndMetadata
    offsets = {}
    for tp in positions:
        if not isinstance(tp, TopicPartition):
            raise TypeError(f"expected a list of TopicPartition, got {type(tp).__name__}")
        if tp.offset >= 0:
            offsets[(tp.topic, tp.partition)] = OffsetAndMetadata(
                tp.offset, -1 if tp.leader_epoch is None else tp.leader_epoch,
                tp.metadata or "")
    return offsets


