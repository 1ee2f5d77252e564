"""`TransactionCoordinator`: Kafka's transaction coordinator over `__transaction_state-N`.

One instance per Broker. It keeps a `TransactionMetadata` per transactional id in memory; every
change of it is a *transition* to a state of `STATE_TABLE` (Kafka's TransactionState with its
legal previous states, KAFKA_FACTS §6.1) and goes through three steps:

  1. prepare (`_prepare_transition`, the only place that checks the table): under the id's
     lock, the target is validated and recorded as `pending_state`; any other request for the
     id now gets ConcurrentTransactions, as in Kafka;
  2. append: the new value (txn/txn_log.py) is appended to
     `__transaction_state-<partition_for(id)>` with origin COORDINATOR and fsynced;
  3. apply: only then is the metadata changed (`_apply`). A failed append clears the pending
     state and leaves the metadata as it was.

PrepareEpochFence is the one state never persisted: it bumps the epoch in memory and is
immediately followed by PrepareAbort at the bumped epoch (as Kafka's endTransaction does).

The commit protocol (EndTxn, timeouts, fencing, recovery):
  Prepare{Commit,Abort} durable -> a marker to every partition of the transaction
  (`TxnPartition.write_marker`, durable) -> Complete{Commit,Abort} durable (no partitions).
Once Prepare* is durable the decision is final: a crash anywhere later is finished when the
Broker reopens (`_load` replays every partition, then re-sends all markers of each Prepare*
transaction with the new, higher coordinator epoch and writes Complete*). Failpoints mark each
step: coordinator.before_prepare, .after_prepare, .after_marker (after each marker),
.before_complete, .after_complete.

Differences from Kafka, all due to embedding (callers block instead of retrying):
  - EndTxn returns after Complete*, not after Prepare* (stronger: the markers are durable).
  - InitProducerId on an Ongoing transaction fences it, aborts it synchronously and then
    bumps once more, returning what Kafka's client gets on its retry after
    CONCURRENT_TRANSACTIONS: an epoch above both the old and the fencing epoch.
  - A Prepare* transaction with no transition in flight (its markers failed, e.g. a disk error
    or a failpoint) is finished by the next InitProducerId or EndTxn for the id, and by the
    periodic `abort_timed_out_transactions` sweep, instead of a background marker thread.
    AddPartitions/AddOffsets still answer ConcurrentTransactions for it, as Kafka does.
  - `__transaction_state` value version follows the transaction's client version: v1
    (flexible) for transaction_version >= 2, v0 otherwise (Kafka picks it from the cluster's
    transaction.version feature). v1 values also carry PreviousProducerId (after a producer-id
    rotation) and NextProducerId (an epoch overflow pre-allocated at Prepare*), which Kafka
    leaves at their defaults, so that both survive a restart.
  - Coordinator-initiated aborts (timeouts, fencing) use the transaction's own client version
    (Kafka: the server's feature level). Under TV2 a fence abort whose extra epoch bump would
    overflow stays at the fence epoch; the next InitProducerId then rotates the producer id.

Thread-safety: every public method may be called from any thread. `_lock` guards the two maps
(id -> metadata; producer id -> id, which keeps producer ids replaced by a rotation so that
their late writes are refused); each metadata has its own lock, held only while deciding
and applying, never during I/O and never while taking another id's lock. Lock order: an id's
lock, then `_lock`. Markers are written with no coordinator lock held.
"""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass, field, replace

from logstore import record_batch
from logstore.errors import CorruptRecord, LogstoreError, UnknownTopicOrPartition
from txn import failpoints, txn_log
from txn.broker import CONSUMER_OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC
from txn.errors import (
    ConcurrentTransactions, CoordinatorNotAvailable, InvalidProducerEpoch, InvalidProducerIdMapping, InvalidRequest,
    InvalidTransactionTimeout, InvalidTxnState, ProducerFenced, TransactionalIdNotFound, TxnError)
from txn.producer_state import AppendOrigin

logger = logging.getLogger("txn.coordinator")

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
EPOCH_MAX = 32767                       # Short.MaxValue
EPOCH_EXHAUSTED = EPOCH_MAX - 1         # TransactionMetadata.isEpochExhausted: epoch >= this
TV_EPOCH_BUMP = 2                       # transaction.version 2 (KIP-890 part 2)
MAX_ROUNDS = 8                          # internal retries of one request (fence, finish, ...)
NO_ERROR = 0

FP_BEFORE_PREPARE = "coordinator.before_prepare"
FP_AFTER_PREPARE = "coordinator.after_prepare"
FP_AFTER_MARKER = "coordinator.after_marker"
FP_BEFORE_COMPLETE = "coordinator.before_complete"
FP_AFTER_COMPLETE = "coordinator.after_complete"


class TxnState(enum.IntEnum):
    """Kafka's TransactionState; the value is the TransactionStatus id stored in the log."""

    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7


@dataclass(frozen=True)
class StateRow:
    name: str                           # Kafka's name (DescribeTransactions, ListTransactions)
    previous: frozenset                 # legal previous states
    previous_tv2: frozenset             # further previous states legal under transaction v2
    expirable: bool                     # transactional.id.expiration.ms applies
    persisted: bool                     # ever written to __transaction_state


S = TxnState
_COMPLETED = frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT})

# KAFKA_FACTS §6.1 (TransactionState.VALID_PREVIOUS_STATES): the one transition table.
STATE_TABLE: dict[TxnState, StateRow] = {
    S.EMPTY: StateRow("Empty", _COMPLETED, frozenset(), True, True),
    S.ONGOING: StateRow("Ongoing", _COMPLETED | {S.ONGOING}, frozenset(), False, True),
    S.PREPARE_COMMIT: StateRow("PrepareCommit", frozenset({S.ONGOING}), frozenset(), False,
                               True),
    S.PREPARE_ABORT: StateRow("PrepareAbort", frozenset({S.ONGOING, S.PREPARE_EPOCH_FENCE}),
                              _COMPLETED, False, True),
    S.COMPLETE_COMMIT: StateRow("CompleteCommit", frozenset({S.PREPARE_COMMIT}), frozenset(),
                                True, True),
    S.COMPLETE_ABORT: StateRow("CompleteAbort", frozenset({S.PREPARE_ABORT}), frozenset(),
                               True, True),
    S.DEAD: StateRow("Dead", _COMPLETED, frozenset(), False, False),   # a tombstone
    S.PREPARE_EPOCH_FENCE: StateRow("PrepareEpochFence", frozenset({S.ONGOING}), frozenset(),
                                    False, False),
}
STATES_BY_NAME = {row.name: state for state, row in STATE_TABLE.items()}
PREPARE_STATES = frozenset({S.PREPARE_COMMIT, S.PREPARE_ABORT})
COMPLETE_STATES = frozenset({S.COMPLETE_COMMIT, S.COMPLETE_ABORT})


def state_name(state: TxnState | None) -> str:
    return "none" if state is None else STATE_TABLE[state].name


def check_transition(transactional_id: str, current: TxnState, target: TxnState,
                     transaction_version: int) -> None:
    """Raise InvalidTxnState unless `current -> target` is in STATE_TABLE."""
    row = STATE_TABLE[target]
    if current in row.previous:
        return
    if transaction_version >= TV_EPOCH_BUMP and current in row.previous_tv2:
        return
    raise InvalidTxnState(
        f"transactional id {transactional_id!r}: illegal transition from "
        f"{state_name(current)} to {state_name(target)} (transaction version "
        f"{transaction_version})")


@dataclass
class TransactionMetadata:
    """Kafka's TransactionMetadata for one transactional id (mutated only by `_apply`)."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    txn_timeout_ms: int
    state: TxnState = S.EMPTY
    partitions: set = field(default_factory=set)
    txn_start_timestamp: int = -1
    txn_last_update_timestamp: int = -1
    previous_producer_id: int = NO_PRODUCER_ID       # the id before the last rotation
    next_producer_id: int = NO_PRODUCER_ID           # pre-allocated at an overflowing Prepare*
    last_producer_epoch: int = NO_PRODUCER_EPOCH     # KIP-360 retries; not persisted
    client_transaction_version: int = 0
    pending_state: TxnState | None = None
    has_failed_epoch_fence: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


@dataclass(frozen=True)
class Transit:
    """The target of one transition (Kafka's TxnTransitMetadata)."""

    state: TxnState
    producer_id: int
    producer_epoch: int
    last_producer_epoch: int
    previous_producer_id: int
    next_producer_id: int
    txn_timeout_ms: int
    partitions: frozenset
    txn_start_timestamp: int
    txn_last_update_timestamp: int
    client_transaction_version: int


def _transit(meta: TransactionMetadata, state: TxnState, **changes) -> Transit:
    """A transit keeping every field of `meta` but those in `changes`."""
    base = Transit(state, meta.producer_id, meta.producer_epoch, meta.last_producer_epoch,
                   meta.previous_producer_id, meta.next_producer_id, meta.txn_timeout_ms,
                   frozenset(meta.partitions), meta.txn_start_timestamp,
                   meta.txn_last_update_timestamp, meta.client_transaction_version)
    return replace(base, **changes)


@dataclass(frozen=True)
class TopicData:
    topic: str
    partitions: list[int]


@dataclass(frozen=True)
class DescribedTransaction:
    """DescribeTransactionsResponse.TransactionState."""

    error_code: int
    transactional_id: str
    transaction_state: str = ""
    transaction_timeout_ms: int = 0
    transaction_start_time_ms: int = -1
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    topics: list[TopicData] = field(default_factory=list)


@dataclass(frozen=True)
class ListedTransaction:
    """ListTransactionsResponse.TransactionState."""

    transactional_id: str
    producer_id: int
    transaction_state: str


@dataclass(frozen=True)
class ListTransactionsResult:
    """ListTransactionsResponse."""

    error_code: int
    unknown_state_filters: list[str]
    transaction_states: list[ListedTransaction]


@dataclass(frozen=True)
class _MarkerPlan:
    producer_id: int
    producer_epoch: int
    commit: bool
    partitions: tuple


class _Action(enum.Enum):
    DONE = 1          # answer without a write
    WRITE = 2         # a prepared transit to persist
    FENCE = 3         # an Ongoing transaction was fenced: abort it, then retry
    FINISH = 4        # a Prepare* transaction is stuck: finish it, then retry
    RETRY = 5         # the metadata was removed (expired) meanwhile: look it up again


def _check_transactional_id(transactional_id) -> None:
    if not isinstance(transactional_id, str) or not transactional_id:
        raise InvalidRequest(f"transactional id must be a non-empty string, "
                             f"got {transactional_id!r}")


class TransactionCoordinator:
    """See the module docstring. Constructed by the Broker, which schedules
    `abort_timed_out_transactions` and `expire_transactional_ids`."""

    def __init__(self, broker):
        self.broker = broker
        self._lock = threading.Lock()
        self._metadata: dict[str, TransactionMetadata] = {}
        self._by_producer_id: dict[int, str] = {}
        self._closed = False
        self._load()
        self._finish_loaded_decisions()

    # -- InitProducerId ---------------------------------------------------------------------

    def init_producer_id(self, transactional_id: str | None, transaction_timeout_ms: int,
                         expected_producer_id: int = NO_PRODUCER_ID,
                         expected_producer_epoch: int = NO_PRODUCER_EPOCH, *,
                         transaction_version: int = TV_EPOCH_BUMP) -> tuple[int, int]:
        """(producer id, epoch) for a (re)starting producer (KAFKA_FACTS §6.3)."""
        self._check_open()
        if transactional_id is None:
            return self.broker.next_producer_id(), 0
        _check_transactional_id(transactional_id)
        max_timeout = self.broker.config["transaction.max.timeout.ms"]
        if not 0 < transaction_timeout_ms <= max_timeout:
            raise InvalidTransactionTimeout(
                f"transaction timeout {transaction_timeout_ms} ms is not in "
                f"1..{max_timeout} (transaction.max.timeout.ms)")
        expected = self._expected(expected_producer_id, expected_producer_epoch)
        for _ in range(MAX_ROUNDS):
            meta = self._get_or_create(transactional_id, transaction_timeout_ms,
                                       transaction_version)
            with meta.lock:
                action, transit = self._plan_init(meta, transaction_timeout_ms, expected,
                                                  transaction_version)
            if action is _Action.WRITE:
                self._persist(meta, transit)
                return transit.producer_id, transit.producer_epoch
            if action is _Action.FENCE:
                self._abort_fenced(meta, transit)
            elif action is _Action.FINISH:
                self._finish_prepared(meta)
        raise ConcurrentTransactions(f"transactional id {transactional_id!r} kept changing "
                                     "while InitProducerId ran; retry")

    @staticmethod
    def _expected(producer_id: int, producer_epoch: int) -> tuple[int, int] | None:
        if producer_id == NO_PRODUCER_ID and producer_epoch == NO_PRODUCER_EPOCH:
            return None
        if producer_id == NO_PRODUCER_ID or producer_epoch == NO_PRODUCER_EPOCH:
            raise InvalidRequest(f"expected producer id {producer_id} and epoch "
                                 f"{producer_epoch} must both be given or both be -1")
        return producer_id, producer_epoch

    def _plan_init(self, meta: TransactionMetadata, timeout_ms: int,
                   expected: tuple[int, int] | None, tv: int):
        """Under meta.lock: what InitProducerId does in meta's state (Kafka's
        prepareInitProducerIdTransit)."""
        if meta.state is S.DEAD:
            return _Action.RETRY, None
        self._check_not_pending(meta)
        if expected is not None and not self._valid_expected_producer_id(meta, *expected):
            raise ProducerFenced(
                f"transactional id {meta.transactional_id!r}: expected producer id "
                f"{expected[0]} is neither the current one ({meta.producer_id}) nor a "
                "retried rotation")
        if meta.state in PREPARE_STATES:
            return _Action.FINISH, None
        if meta.state is S.ONGOING:
            return _Action.FENCE, self._prepare_fence(meta)
        transit = self._init_transit(meta, timeout_ms, expected, tv)
        self._prepare_transition(meta, transit)
        return _Action.WRITE, transit

    @staticmethod
    def _valid_expected_producer_id(meta: TransactionMetadata, producer_id: int,
                                    producer_epoch: int) -> bool:
        return (meta.producer_epoch == NO_PRODUCER_EPOCH or producer_id == meta.producer_id
                or (producer_id == meta.previous_producer_id
                    and producer_epoch >= EPOCH_EXHAUSTED))

    def _init_transit(self, meta: TransactionMetadata, timeout_ms: int,
                      expected: tuple[int, int] | None, tv: int) -> Transit:
        """Empty at epoch + 1, the same epoch (a KIP-360 retry), or a new producer id at epoch 0
        when the epoch is exhausted (prepareIncrementProducerEpoch / prepareProducerIdRotation)."""
        common = dict(txn_timeout_ms=timeout_ms, partitions=frozenset(), txn_start_timestamp=-1,
                      txn_last_update_timestamp=self.broker.time_ms(),
                      next_producer_id=NO_PRODUCER_ID, client_transaction_version=tv)
        epoch = meta.producer_epoch
        if epoch >= EPOCH_EXHAUSTED and (expected is None or expected[1] == epoch):
            return _transit(meta, S.EMPTY, producer_id=self.broker.next_producer_id(),
                            producer_epoch=0, previous_producer_id=meta.producer_id,
                            last_producer_epoch=NO_PRODUCER_EPOCH if expected is None
                            else epoch, **common)
        if expected is None:
            bumped, last = epoch + 1, NO_PRODUCER_EPOCH
        elif epoch == NO_PRODUCER_EPOCH or expected[1] == epoch:
            bumped, last = epoch + 1, epoch
        elif expected[1] == meta.last_producer_epoch:
            bumped, last = epoch, meta.last_producer_epoch        # a retry of a success
        else:
            raise ProducerFenced(
                f"transactional id {meta.transactional_id!r}: expected epoch {expected[1]} is "
                f"neither the current epoch {epoch} nor the last one "
                f"{meta.last_producer_epoch}")
        return _transit(meta, S.EMPTY, producer_epoch=bumped, last_producer_epoch=last,
                        **common)

    # -- AddPartitionsToTxn / AddOffsetsToTxn -----------------------------------------------

    def add_partitions_to_txn(self, transactional_id: str, producer_id: int,
                              producer_epoch: int, partitions, *,
                              transaction_version: int = TV_EPOCH_BUMP) -> None:
        """Add (topic, partition) pairs to the ongoing transaction (starting it if needed)."""
        self._check_open()
        _check_transactional_id(transactional_id)
        wanted = frozenset((topic, partition) for topic, partition in partitions)
        for topic, partition in sorted(wanted):
            self._check_partition_exists(topic, partition)
        meta = self._existing(transactional_id)
        with meta.lock:
            self._check_producer(meta, producer_id, producer_epoch)
            self._check_not_pending(meta)
            if meta.state in PREPARE_STATES:
                raise ConcurrentTransactions(
                    f"transactional id {transactional_id!r} is completing its transaction "
                    f"({state_name(meta.state)})")
            if meta.state is S.ONGOING and wanted <= meta.partitions:
                return
            if not wanted and meta.state is not S.ONGOING:
                return
            now = self.broker.time_ms()
            start = now if meta.state in _COMPLETED else meta.txn_start_timestamp
            transit = _transit(meta, S.ONGOING, partitions=frozenset(meta.partitions) | wanted,
                               txn_start_timestamp=start, txn_last_update_timestamp=now,
                               client_transaction_version=transaction_version)
            self._prepare_transition(meta, transit)
        self._persist(meta, transit)

    def add_offsets_to_txn(self, transactional_id: str, producer_id: int, producer_epoch: int,
                           group_id: str, *, transaction_version: int = TV_EPOCH_BUMP) -> None:
        """Add the group's `__consumer_offsets` partition to the transaction."""
        if not isinstance(group_id, str):
            raise InvalidRequest(f"group id must be a string, got {group_id!r}")
        partition = self.broker.offsets_partition(group_id)
        self.add_partitions_to_txn(transactional_id, producer_id, producer_epoch,
                                   [(CONSUMER_OFFSETS_TOPIC, partition)],
                                   transaction_version=transaction_version)

    def _check_partition_exists(self, topic: str, partition: int) -> None:
        info = self.broker.store.topic(topic)          # raises UnknownTopicOrPartition
        if not isinstance(partition, int) or not 0 <= partition < info.partitions:
            raise UnknownTopicOrPartition(
                f"topic {topic!r} has partitions 0..{info.partitions - 1}, not {partition!r}")

    @staticmethod
    def _check_producer(meta: TransactionMetadata, producer_id: int,
                        producer_epoch: int) -> None:
        if meta.state is S.DEAD or meta.producer_id != producer_id:
            raise InvalidProducerIdMapping(
                f"transactional id {meta.transactional_id!r} is not mapped to producer id "
                f"{producer_id}")
        if meta.producer_epoch != producer_epoch:
            raise ProducerFenced(
                f"transactional id {meta.transactional_id!r}: producer epoch {producer_epoch} "
                f"is not the current epoch {meta.producer_epoch}")

    @staticmethod
    def _check_not_pending(meta: TransactionMetadata) -> None:
        if meta.pending_state is not None:
            raise ConcurrentTransactions(
                f"transactional id {meta.transactional_id!r} has a transition to "
                f"{state_name(meta.pending_state)} in progress")

    # -- EndTxn -----------------------------------------------------------------------------

    def end_txn(self, transactional_id: str, producer_id: int, producer_epoch: int,
                commit: bool, *, transaction_version: int = TV_EPOCH_BUMP) -> tuple[int, int]:
        """Commit or abort; returns (producer id, epoch) once Complete* is durable (under
        transaction version 2 the epoch is bumped, or a new producer id starts at 0)."""
        self._check_open()
        _check_transactional_id(transactional_id)
        for _ in range(MAX_ROUNDS):
            meta = self._existing(transactional_id)
            with meta.lock:
                if transaction_version >= TV_EPOCH_BUMP:
                    action, result = self._plan_end_v2(meta, producer_id, producer_epoch,
                                                       commit)
                else:
                    action, result = self._plan_end_v1(meta, producer_id, producer_epoch,
                                                       commit, transaction_version)
            if action is _Action.DONE:
                return result
            if action is _Action.WRITE:
                return self._run_end(meta, result)
            if action is _Action.FINISH:
                self._finish_prepared(meta)
        raise ConcurrentTransactions(f"transactional id {transactional_id!r} kept changing "
                                     "while EndTxn ran; retry")

    def _plan_end_v1(self, meta: TransactionMetadata, producer_id: int, producer_epoch: int,
                     commit: bool, tv: int):
        """Under meta.lock: Kafka's endTransactionWithTV1 (strict epoch, no bump)."""
        self._check_producer(meta, producer_id, producer_epoch)
        self._check_not_pending(meta)
        state = meta.state
        if state is S.ONGOING:
            return _Action.WRITE, self._prepare_end(meta, commit, tv)
        if state in COMPLETE_STATES and _matches(state, commit):
            return _Action.DONE, (meta.producer_id, meta.producer_epoch)
        if state in PREPARE_STATES and _matches(state, commit):
            return _Action.FINISH, None
        raise self._end_mismatch(meta, commit)

    def _plan_end_v2(self, meta: TransactionMetadata, producer_id: int, producer_epoch: int,
                     commit: bool):
        """Under meta.lock: Kafka's endTransaction for TV2, where every EndTxn bumps the epoch
        and a retry is recognised by the epoch being one below the current one."""
        if meta.state is S.DEAD:
            return _Action.RETRY, None
        state = meta.state
        retry_on_overflow = (meta.previous_producer_id == producer_id
                             and producer_epoch == EPOCH_EXHAUSTED and meta.producer_epoch == 0)
        retry_on_bump = meta.producer_epoch == producer_epoch + 1
        if meta.producer_id != producer_id and not retry_on_overflow:
            raise InvalidProducerIdMapping(
                f"transactional id {meta.transactional_id!r} is not mapped to producer id "
                f"{producer_id}")
        if state in PREPARE_STATES:
            valid = retry_on_bump
        elif state in COMPLETE_STATES:
            valid = retry_on_bump or retry_on_overflow or producer_epoch == meta.producer_epoch
        else:
            valid = producer_epoch == meta.producer_epoch
        if not valid:
            raise ProducerFenced(
                f"transactional id {meta.transactional_id!r}: producer epoch {producer_epoch} "
                f"is fenced (current epoch {meta.producer_epoch}, {state_name(state)})")
        self._check_not_pending(meta)
        retry = retry_on_bump or retry_on_overflow
        if state is S.ONGOING:
            return _Action.WRITE, self._prepare_end(meta, commit, TV_EPOCH_BUMP)
        if state in PREPARE_STATES and _matches(state, commit):
            return _Action.FINISH, None
        if state in COMPLETE_STATES and _matches(state, commit) and retry:
            return _Action.DONE, (meta.producer_id, meta.producer_epoch)
        if not commit and not retry and state in _COMPLETED:
            # TV2: the client may abort when unsure whether a transaction is open.
            return _Action.WRITE, self._prepare_end(meta, False, TV_EPOCH_BUMP, empty=True)
        raise self._end_mismatch(meta, commit)

    @staticmethod
    def _end_mismatch(meta: TransactionMetadata, commit: bool) -> InvalidTxnState:
        return InvalidTxnState(
            f"transactional id {meta.transactional_id!r} is {state_name(meta.state)}; "
            f"cannot {'commit' if commit else 'abort'}")

    def _prepare_end(self, meta: TransactionMetadata, commit: bool, tv: int, *,
                     empty: bool = False, fence: bool = False) -> Transit:
        """Under meta.lock: prepare PrepareCommit/PrepareAbort (Kafka's prepareAbortOrCommit).
        TV2 writes it at epoch + 1 (lastProducerEpoch = the old one) and, when the epoch is
        exhausted, pre-allocates the producer id that Complete* switches to."""
        epoch, last, next_id = meta.producer_epoch, meta.last_producer_epoch, NO_PRODUCER_ID
        if tv >= TV_EPOCH_BUMP:
            epoch, last = min(meta.producer_epoch + 1, EPOCH_MAX), meta.producer_epoch
            if not fence and meta.producer_epoch >= EPOCH_EXHAUSTED:
                next_id = self.broker.next_producer_id()
        now = self.broker.time_ms()
        transit = _transit(meta, S.PREPARE_COMMIT if commit else S.PREPARE_ABORT,
                           producer_epoch=epoch, last_producer_epoch=last,
                           next_producer_id=next_id, txn_last_update_timestamp=now,
                           txn_start_timestamp=now if empty else meta.txn_start_timestamp,
                           client_transaction_version=tv)
        self._prepare_transition(meta, transit)
        return transit

    def _run_end(self, meta: TransactionMetadata, prepare: Transit, *,
                 fence: bool = False) -> tuple[int, int]:
        """Persist a prepared Prepare*, then the markers, then Complete*."""
        self._persist(meta, prepare, before=FP_BEFORE_PREPARE, fence=fence)
        with meta.lock:
            complete, plan = self._prepare_complete(meta)
        return self._markers_then_complete(meta, complete, plan, after_prepare=True)

    def _prepare_complete(self, meta: TransactionMetadata) -> tuple[Transit, _MarkerPlan]:
        """Under meta.lock, in Prepare*: prepare Complete* (Kafka's prepareComplete; a
        pre-allocated next producer id takes over at epoch 0) and the markers to send."""
        plan = _MarkerPlan(meta.producer_id, meta.producer_epoch,
                           meta.state is S.PREPARE_COMMIT, tuple(sorted(meta.partitions)))
        switch = (meta.client_transaction_version >= TV_EPOCH_BUMP
                  and meta.next_producer_id != NO_PRODUCER_ID)
        transit = _transit(
            meta, S.COMPLETE_COMMIT if plan.commit else S.COMPLETE_ABORT,
            producer_id=meta.next_producer_id if switch else meta.producer_id,
            producer_epoch=0 if switch else meta.producer_epoch,
            previous_producer_id=meta.producer_id if switch else meta.previous_producer_id,
            next_producer_id=NO_PRODUCER_ID, partitions=frozenset(),
            txn_last_update_timestamp=self.broker.time_ms())
        self._prepare_transition(meta, transit)
        return transit, plan

    def _markers_then_complete(self, meta: TransactionMetadata, complete: Transit,
                               plan: _MarkerPlan, *, after_prepare: bool = False):
        """With Complete* pending: write every marker, then persist Complete*."""
        try:
            if after_prepare:
                failpoints.hit(FP_AFTER_PREPARE)
            for topic, partition in plan.partitions:
                self._write_marker(meta.transactional_id, plan, topic, partition)
                failpoints.hit(FP_AFTER_MARKER)
        except BaseException:
            with meta.lock:
                meta.pending_state = None
            raise
        self._persist(meta, complete, before=FP_BEFORE_COMPLETE)
        failpoints.hit(FP_AFTER_COMPLETE)
        return complete.producer_id, complete.producer_epoch

    def _write_marker(self, transactional_id: str, plan: _MarkerPlan, topic: str,
                      partition: int) -> None:
        store = self.broker.store
        if not store.has_topic(topic) or partition >= store.topic(topic).partitions:
            # Kafka skips partitions deleted since they joined the transaction.
            logger.warning("transactional id %r: %s-%d no longer exists; no marker written",
                           transactional_id, topic, partition)
            return
        self.broker.partition(topic, partition).write_marker(
            plan.producer_id, plan.producer_epoch, plan.commit, self.broker.coordinator_epoch,
            durable=True)

    def _finish_prepared(self, meta: TransactionMetadata) -> None:
        """Finish a Prepare* transaction no one is working on: markers, then Complete*."""
        with meta.lock:
            if meta.state not in PREPARE_STATES or meta.pending_state is not None:
                return
            complete, plan = self._prepare_complete(meta)
        self._markers_then_complete(meta, complete, plan)
        logger.info("transactional id %r: finished %s left by an earlier attempt",
                    meta.transactional_id, state_name(complete.state))

    # -- fencing ----------------------------------------------------------------------------

    def _prepare_fence(self, meta: TransactionMetadata) -> Transit:
        """Under meta.lock, Ongoing: PrepareEpochFence at epoch + 1 (in memory only; not bumped
        again after a fence whose PrepareAbort failed to be written)."""
        again = meta.has_failed_epoch_fence or meta.producer_epoch >= EPOCH_MAX
        transit = _transit(meta, S.PREPARE_EPOCH_FENCE,
                           producer_epoch=meta.producer_epoch if again
                           else meta.producer_epoch + 1,
                           last_producer_epoch=NO_PRODUCER_EPOCH)
        self._prepare_transition(meta, transit)
        return transit

    def _abort_fenced(self, meta: TransactionMetadata, fence: Transit) -> tuple[int, int]:
        """Abort a transaction fenced by `_prepare_fence`: the fencing epoch takes effect in
        memory, then PrepareAbort at it (TV2: at it + 1), markers, CompleteAbort."""
        try:
            with meta.lock:
                meta.producer_epoch = fence.producer_epoch
                meta.last_producer_epoch = NO_PRODUCER_EPOCH
                prepare = self._prepare_end(meta, False, meta.client_transaction_version,
                                            fence=True)
        except BaseException:
            with meta.lock:
                meta.pending_state = None
                meta.has_failed_epoch_fence = True
            raise
        return self._run_end(meta, prepare, fence=True)

    # -- transitions ------------------------------------------------------------------------

    def _prepare_transition(self, meta: TransactionMetadata, transit: Transit) -> None:
        """Under meta.lock: check `transit` against STATE_TABLE and make it the pending state.
        A pending PrepareEpochFence counts as the current state (it is only ever followed by
        PrepareAbort); any other pending transition means ConcurrentTransactions."""
        fencing = meta.pending_state is S.PREPARE_EPOCH_FENCE
        if meta.pending_state is not None and not fencing:
            self._check_not_pending(meta)
        current = S.PREPARE_EPOCH_FENCE if fencing else meta.state
        check_transition(meta.transactional_id, current, transit.state,
                         transit.client_transaction_version)
        if transit.state is not S.DEAD and not 0 <= transit.producer_epoch <= EPOCH_MAX:
            raise ValueError(f"transactional id {meta.transactional_id!r}: producer epoch "
                             f"{transit.producer_epoch} out of range")
        meta.pending_state = transit.state

    def _persist(self, meta: TransactionMetadata, transit: Transit, *,
                 before: str | None = None, fence: bool = False) -> None:
        """Append the prepared transit durably, then apply it; on failure drop the pending
        state (a failed fence keeps its in-memory epoch, as Kafka's hasFailedEpochFence)."""
        try:
            if before is not None:
                failpoints.hit(before)
            self._append(meta.transactional_id, transit)
        except BaseException:
            with meta.lock:
                meta.pending_state = None
                if fence:
                    meta.has_failed_epoch_fence = True
            raise
        with meta.lock:
            self._apply(meta, transit)

    def _apply(self, meta: TransactionMetadata, transit: Transit) -> None:
        """Under meta.lock: the transit is durable; make it the metadata."""
        if meta.pending_state is not transit.state:
            raise RuntimeError(f"transactional id {meta.transactional_id!r}: applying "
                               f"{state_name(transit.state)} but the pending state is "
                               f"{state_name(meta.pending_state)}")
        if (transit.producer_id == meta.producer_id
                and transit.producer_epoch < meta.producer_epoch):
            raise RuntimeError(f"transactional id {meta.transactional_id!r}: epoch would go "
                               f"back from {meta.producer_epoch} to {transit.producer_epoch}")
        old_producer_id = meta.producer_id
        meta.producer_id = transit.producer_id
        meta.producer_epoch = transit.producer_epoch
        meta.last_producer_epoch = transit.last_producer_epoch
        meta.previous_producer_id = transit.previous_producer_id
        meta.next_producer_id = transit.next_producer_id
        meta.txn_timeout_ms = transit.txn_timeout_ms
        meta.partitions = set(transit.partitions)
        meta.txn_start_timestamp = transit.txn_start_timestamp
        meta.txn_last_update_timestamp = transit.txn_last_update_timestamp
        meta.client_transaction_version = transit.client_transaction_version
        meta.state = transit.state
        meta.pending_state = None
        if transit.state in PREPARE_STATES:
            meta.has_failed_epoch_fence = False
        if old_producer_id != meta.producer_id:      # the old id stays known: fenced
            with self._lock:
                self._by_producer_id[meta.producer_id] = meta.transactional_id

    def _append(self, transactional_id: str, transit: Transit | None) -> None:
        """Write the value of `transit` (None: a tombstone) to the id's partition, fsynced."""
        key = txn_log.encode_key(transactional_id)
        value = None if transit is None else txn_log.encode_value(
            _log_value(transit), txn_log.VALUE_VERSION_FLEXIBLE
            if transit.client_transaction_version >= TV_EPOCH_BUMP
            else txn_log.VALUE_VERSION_CLASSIC)
        batch = record_batch.build_batch([value], keys=[key], now_ms=self.broker.time_ms())
        index = self.broker.transaction_state_partition(transactional_id)
        self.broker.partition(TRANSACTION_STATE_TOPIC, index).append(
            batch, origin=AppendOrigin.COORDINATOR, durable=True)

    # -- lookups ----------------------------------------------------------------------------

    def _existing(self, transactional_id: str) -> TransactionMetadata:
        with self._lock:
            meta = self._metadata.get(transactional_id)
        if meta is None:
            raise InvalidProducerIdMapping(
                f"transactional id {transactional_id!r} is unknown (InitProducerId first)")
        return meta

    def _get_or_create(self, transactional_id: str, timeout_ms: int,
                       tv: int) -> TransactionMetadata:
        """The id's metadata; an unknown id gets a new producer id at epoch -1 (in memory until
        InitProducerId persists its Empty state)."""
        with self._lock:
            meta = self._metadata.get(transactional_id)
            if meta is None:
                meta = TransactionMetadata(
                    transactional_id, self.broker.next_producer_id(), NO_PRODUCER_EPOCH,
                    timeout_ms, txn_last_update_timestamp=self.broker.time_ms(),
                    client_transaction_version=tv)
                self._metadata[transactional_id] = meta
                self._by_producer_id[meta.producer_id] = transactional_id
            return meta

    def _snapshot(self) -> list[TransactionMetadata]:
        with self._lock:
            return list(self._metadata.values())

    # -- KIP-890 part 1 ---------------------------------------------------------------------

    def verify_partition(self, producer_id: int, producer_epoch: int, topic_partition) -> bool:
        """Whether producer_id's transaction is Ongoing at producer_epoch, includes
        topic_partition and is not being ended (AddPartitionsToTxn v4 verifyOnly).

        A zombie is refused as Kafka refuses its produce: an epoch below the current one
        raises InvalidProducerEpoch (the coordinator answers PRODUCER_FENCED, which the
        partition leader turns into INVALID_PRODUCER_EPOCH), and a producer id replaced by a
        rotation raises InvalidProducerIdMapping."""
        with self._lock:
            meta = self._metadata.get(self._by_producer_id.get(producer_id, ""))
        if meta is None:
            return False
        topic, partition = topic_partition
        with meta.lock:
            if meta.state is S.DEAD:
                return False
            if meta.producer_id != producer_id:
                raise InvalidProducerIdMapping(
                    f"transactional id {meta.transactional_id!r} moved from producer id "
                    f"{producer_id} to {meta.producer_id}")
            if producer_epoch < meta.producer_epoch:
                raise InvalidProducerEpoch(
                    f"transactional id {meta.transactional_id!r}: producer {producer_id} "
                    f"epoch {producer_epoch} is fenced by epoch {meta.producer_epoch}")
            return (meta.state is S.ONGOING and meta.pending_state in (None, S.ONGOING)
                    and meta.producer_epoch == producer_epoch
                    and (topic, partition) in meta.partitions)

    # -- periodic tasks ---------------------------------------------------------------------

    def abort_timed_out_transactions(self) -> None:
        """Fence and abort every Ongoing transaction past txnStartTimestamp + timeout (no
        transition in flight), and finish any Prepare* transaction left unfinished."""
        if self._closed:
            return
        now = self.broker.time_ms()
        failures = []
        for meta in self._snapshot():
            fence = finish = None
            with meta.lock:
                if meta.pending_state is not None:
                    continue
                if (meta.state is S.ONGOING
                        and meta.txn_start_timestamp + meta.txn_timeout_ms < now):
                    fence = self._prepare_fence(meta)
                elif meta.state in PREPARE_STATES:
                    finish = True
            try:
                if fence is not None:
                    logger.info("transactional id %r: transaction timed out after %d ms; "
                                "aborting it at epoch %d", meta.transactional_id,
                                meta.txn_timeout_ms, fence.producer_epoch)
                    self._abort_fenced(meta, fence)
                elif finish:
                    self._finish_prepared(meta)
            except TxnError as exc:                   # e.g. a request raced us: next round
                logger.info("transactional id %r: timeout abort skipped: %s",
                            meta.transactional_id, exc)
            except Exception as exc:  # noqa: BLE001 - one id must not stop the others
                logger.exception("transactional id %r: timeout abort failed",
                                 meta.transactional_id)
                failures.append(exc)
        if failures:
            raise failures[0]

    def expire_transactional_ids(self) -> None:
        """Tombstone and forget ids idle in Empty/Complete* for transactional.id.expiration.ms."""
        if self._closed:
            return
        horizon = self.broker.time_ms() - self.broker.config["transactional.id.expiration.ms"]
        for meta in self._snapshot():
            with meta.lock:
                if (meta.pending_state is not None or not STATE_TABLE[meta.state].expirable
                        or meta.txn_last_update_timestamp > horizon):
                    continue
                self._prepare_transition(meta, _transit(meta, S.DEAD))
            try:
                self._append(meta.transactional_id, None)
            except BaseException:
                with meta.lock:
                    meta.pending_state = None
                raise
            with meta.lock:
                meta.state = S.DEAD
                meta.pending_state = None
                with self._lock:
                    if self._metadata.get(meta.transactional_id) is meta:
                        del self._metadata[meta.transactional_id]
                    for pid in [pid for pid, txn_id in self._by_producer_id.items()
                                if txn_id == meta.transactional_id]:
                        del self._by_producer_id[pid]
            logger.info("transactional id %r expired (producer id %d)", meta.transactional_id,
                        meta.producer_id)

    # -- DescribeTransactions / ListTransactions --------------------------------------------

    def describe_transactions(self, transactional_ids) -> list[DescribedTransaction]:
        self._check_open()
        return [self._describe(txn_id) for txn_id in transactional_ids]

    def _describe(self, transactional_id) -> DescribedTransaction:
        if not isinstance(transactional_id, str) or not transactional_id:
            return DescribedTransaction(InvalidRequest.code, transactional_id or "")
        with self._lock:
            meta = self._metadata.get(transactional_id)
        if meta is None:
            return DescribedTransaction(TransactionalIdNotFound.code, transactional_id)
        with meta.lock:
            if meta.state is S.DEAD:
                return DescribedTransaction(TransactionalIdNotFound.code, transactional_id)
            topics = [TopicData(topic, list(ids))
                      for topic, ids in txn_log.group_partitions(meta.partitions)]
            return DescribedTransaction(
                NO_ERROR, transactional_id, state_name(meta.state), meta.txn_timeout_ms,
                meta.txn_start_timestamp, meta.producer_id, meta.producer_epoch, topics)

    def list_transactions(self, states=None, producer_ids=None) -> ListTransactionsResult:
        """Transactions whose state name is in `states` and producer id in `producer_ids`
        (None or empty: no filter). Unknown state names come back in unknown_state_filters."""
        self._check_open()
        wanted_states = set()
        unknown = []
        for name in states or ():
            if name in STATES_BY_NAME:
                wanted_states.add(STATES_BY_NAME[name])
            else:
                unknown.append(name)
        if states and not wanted_states:
            return ListTransactionsResult(NO_ERROR, unknown, [])
        wanted_ids = set(producer_ids or ())
        listed = []
        for meta in self._snapshot():
            with meta.lock:
                if meta.state is S.DEAD:
                    continue
                if wanted_states and meta.state not in wanted_states:
                    continue
                if wanted_ids and meta.producer_id not in wanted_ids:
                    continue
                listed.append(ListedTransaction(meta.transactional_id, meta.producer_id,
                                                state_name(meta.state)))
        listed.sort(key=lambda t: t.transactional_id)
        return ListTransactionsResult(NO_ERROR, unknown, listed)

    # -- loading ----------------------------------------------------------------------------

    def _load(self) -> None:
        """Replay every `__transaction_state` partition: the last value per key wins and a
        tombstone deletes (Kafka's loadTransactionMetadata)."""
        loaded: dict[str, TransactionMetadata] = {}
        count = self.broker.partitions_of(TRANSACTION_STATE_TOPIC)   # the topic's, as Kafka
        for index in range(count):
            part = self.broker.partition(TRANSACTION_STATE_TOPIC, index)
            for batch in part.log.batches():
                if batch.is_control:
                    continue
                for record in batch.records():
                    self._load_record(loaded, part.log.name, record)
        self._metadata = loaded
        self._by_producer_id = {}
        for txn_id, meta in loaded.items():
            if meta.previous_producer_id != NO_PRODUCER_ID:
                self._by_producer_id[meta.previous_producer_id] = txn_id
            self._by_producer_id[meta.producer_id] = txn_id
        if loaded:
            logger.info("loaded %d transactional id(s) from %s", len(loaded),
                        TRANSACTION_STATE_TOPIC)

    @staticmethod
    def _load_record(loaded: dict, where: str, record) -> None:
        try:
            transactional_id = txn_log.decode_key(record.key)
            if transactional_id is None:
                logger.warning("%s offset %d: unknown key version; skipped", where,
                               record.offset)
                return
            value = txn_log.decode_value(record.value)
            if value is None:
                loaded.pop(transactional_id, None)
                return
            loaded[transactional_id] = _metadata_from(transactional_id, value)
        except CorruptRecord as exc:
            raise CorruptRecord(f"{where} offset {record.offset}: {exc}") from None

    def _finish_loaded_decisions(self) -> None:
        """Re-send the markers of every Prepare* transaction and write its Complete*."""
        for meta in self._snapshot():
            if meta.state not in PREPARE_STATES:
                continue
            logger.info("transactional id %r: completing %s found on load (coordinator epoch "
                        "%d)", meta.transactional_id, state_name(meta.state),
                        self.broker.coordinator_epoch)
            try:
                self._finish_prepared(meta)
            except LogstoreError:
                logger.exception("transactional id %r: could not complete %s on load; the "
                                 "timeout sweep retries", meta.transactional_id,
                                 state_name(meta.state))

    def close(self) -> None:
        """Refuse further requests (CoordinatorNotAvailable); the Broker closes the logs."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise CoordinatorNotAvailable("the transaction coordinator is closed")


def _matches(state: TxnState, commit: bool) -> bool:
    """Whether a Prepare*/Complete* state is the outcome `commit` asks for."""
    return (state in (S.PREPARE_COMMIT, S.COMPLETE_COMMIT)) == commit


def _log_value(transit: Transit) -> txn_log.TransactionLogValue:
    partitions = None if transit.state is S.EMPTY else \
        txn_log.group_partitions(transit.partitions)
    return txn_log.TransactionLogValue(
        producer_id=transit.producer_id, producer_epoch=transit.producer_epoch,
        transaction_timeout_ms=transit.txn_timeout_ms, transaction_status=int(transit.state),
        transaction_partitions=partitions,
        transaction_last_update_timestamp_ms=transit.txn_last_update_timestamp,
        transaction_start_timestamp_ms=transit.txn_start_timestamp,
        previous_producer_id=transit.previous_producer_id,
        next_producer_id=transit.next_producer_id,
        client_transaction_version=transit.client_transaction_version)


def _metadata_from(transactional_id: str, value: txn_log.TransactionLogValue):
    """In-memory metadata of a loaded value (lastProducerEpoch is not persisted: -1)."""
    try:
        state = TxnState(value.transaction_status)
    except ValueError:
        raise CorruptRecord(f"transactional id {transactional_id!r}: unknown transaction "
                            f"status {value.transaction_status}") from None
    if not STATE_TABLE[state].persisted:
        raise CorruptRecord(f"transactional id {transactional_id!r}: state "
                            f"{state_name(state)} is never written to the log")
    partitions = set() if state is S.EMPTY else {
        (topic, partition) for topic, ids in value.transaction_partitions or ()
        for partition in ids}
    return TransactionMetadata(
        transactional_id, value.producer_id, value.producer_epoch,
        value.transaction_timeout_ms, state, partitions, value.transaction_start_timestamp_ms,
        value.transaction_last_update_timestamp_ms,
        previous_producer_id=value.previous_producer_id,
        next_producer_id=value.next_producer_id,
        client_transaction_version=value.client_transaction_version)
