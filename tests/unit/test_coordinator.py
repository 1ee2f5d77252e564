"""txn/coordinator.py: Kafka's transaction coordinator on a real Broker.

Method: a real Broker on a tmp dir with a fake clock (`time_ms=`), real TxnPartitions for data,
markers and `__transaction_state`. Crash recovery arms failpoints with "raise" in-process, then
`broker.abandon()` (what kill -9 leaves) and reopens; one test kills a child process with the
"crash" action at each failpoint of the commit protocol.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from logstore import record_batch
from logstore.errors import UnknownTopicOrPartition
from txn import failpoints, txn_log
from txn.broker import CONSUMER_OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC, Broker
from txn.coordinator import (
    EPOCH_EXHAUSTED, STATE_TABLE, TV_EPOCH_BUMP, TxnState, check_transition)
from txn.errors import (
    ConcurrentTransactions, CoordinatorNotAvailable, InvalidProducerEpoch, InvalidProducerIdMapping, InvalidRequest,
    InvalidTransactionTimeout, InvalidTxnState, ProducerFenced)
from txn.failpoints import FailpointTriggered
from txn.fetch import committed_batches

CONFIG = {"transaction.state.log.num.partitions": 3, "offsets.topic.num.partitions": 3,
          "num.partitions": 2}
TIMEOUT = 60000
START_MS = 1_700_000_000_000
COMMIT_POINTS = ["coordinator.before_prepare", "coordinator.after_prepare",
                 "coordinator.after_marker", "coordinator.before_complete",
                 "coordinator.after_complete"]


class Clock:
    def __init__(self, now: int = START_MS):
        self.now = now

    def __call__(self) -> int:
        return self.now


class Env:
    """A Broker on `path` with a fake clock, reopenable after a clean close or a crash."""

    def __init__(self, path):
        self.path = str(path)
        self.clock = Clock()
        self.broker = self._open()
        self.sequences: dict[tuple[int, int, str, int], int] = {}

    def _open(self) -> Broker:
        return Broker(self.path, dict(CONFIG), time_ms=self.clock, background=False)

    @property
    def tc(self):
        return self.broker.transaction_coordinator

    def reopen(self, crash: bool = False) -> None:
        if crash:
            self.broker.abandon()
        else:
            self.broker.close()
        self.broker = self._open()

    def send(self, pid: int, epoch: int, topic: str = "t", partition: int = 0,
             values=(b"v",)):
        key = (pid, epoch, topic, partition)
        seq = self.sequences.get(key, 0)
        batch = record_batch.build_batch(list(values), producer_id=pid, producer_epoch=epoch,
                                         base_sequence=seq, transactional=True,
                                         now_ms=self.clock())
        result = self.broker.partition(topic, partition).append(batch)
        self.sequences[key] = seq + len(values)
        return result

    def markers(self, topic: str, partition: int) -> list[tuple[int, int, bool, int]]:
        """(pid, epoch, commit, coordinator epoch) of every marker in the partition."""
        found = []
        for batch in self.broker.partition(topic, partition).log.batches():
            if batch.is_control:
                control = batch.control_record()
                found.append((batch.producer_id, batch.producer_epoch,
                              control.type == record_batch.COMMIT, control.coordinator_epoch))
        return found

    def committed(self, topic: str = "t", partition: int = 0) -> list[bytes]:
        result = self.broker.partition(topic, partition).fetch(0, 1 << 20, "read_committed")
        return [r.value for b in committed_batches(result.batches(),
                                                   result.aborted_transactions)
                for r in b.records()]

    def state(self, txn_id: str):
        (described,) = self.tc.describe_transactions([txn_id])
        return described

    def state_log_values(self, txn_id: str) -> list[tuple[int, txn_log.TransactionLogValue]]:
        """(value version, value) of every record of txn_id in __transaction_state."""
        index = self.broker.transaction_state_partition(txn_id)
        out = []
        for batch in self.broker.partition(TRANSACTION_STATE_TOPIC, index).log.batches():
            for record in batch.records():
                if txn_log.decode_key(record.key) == txn_id:
                    version = -1 if record.value is None else \
                        int.from_bytes(record.value[:2], "big")
                    out.append((version, txn_log.decode_value(record.value)))
        return out

    def begin(self, txn_id: str = "tx", partitions=(("t", 0),), tv: int = TV_EPOCH_BUMP):
        pid, epoch = self.tc.init_producer_id(txn_id, TIMEOUT, transaction_version=tv)
        self.tc.add_partitions_to_txn(txn_id, pid, epoch, list(partitions),
                                      transaction_version=tv)
        for topic, partition in partitions:
            self.send(pid, epoch, topic, partition)
        return pid, epoch


@pytest.fixture
def env(tmp_path):
    failpoints.disarm()
    environment = Env(tmp_path / "data")
    environment.broker.ensure_topic("t")
    yield environment
    failpoints.disarm()
    if not environment.broker.closed:
        environment.broker.close()


# -- the state table ----------------------------------------------------------------------

def test_state_table_is_kafkas():
    S = TxnState
    expected = {
        S.EMPTY: {S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT},
        S.ONGOING: {S.ONGOING, S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT},
        S.PREPARE_COMMIT: {S.ONGOING},
        S.PREPARE_ABORT: {S.ONGOING, S.PREPARE_EPOCH_FENCE, S.EMPTY, S.COMPLETE_COMMIT,
                          S.COMPLETE_ABORT},
        S.COMPLETE_COMMIT: {S.PREPARE_COMMIT},
        S.COMPLETE_ABORT: {S.PREPARE_ABORT},
        S.DEAD: {S.EMPTY, S.COMPLETE_ABORT, S.COMPLETE_COMMIT},
        S.PREPARE_EPOCH_FENCE: {S.ONGOING},
    }
    assert {s: set(r.previous | r.previous_tv2) for s, r in STATE_TABLE.items()} == expected
    assert [int(s) for s in S] == list(range(8))
    assert {s for s, r in STATE_TABLE.items() if r.expirable} == \
        {S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}


def test_illegal_transition_names_the_id_and_both_states():
    with pytest.raises(InvalidTxnState, match="'my-id'.*CompleteCommit.*PrepareCommit"):
        check_transition("my-id", TxnState.COMPLETE_COMMIT, TxnState.PREPARE_COMMIT, 2)
    with pytest.raises(InvalidTxnState, match="Empty.*PrepareAbort"):
        check_transition("x", TxnState.EMPTY, TxnState.PREPARE_ABORT, 1)
    check_transition("x", TxnState.EMPTY, TxnState.PREPARE_ABORT, 2)


# -- InitProducerId -----------------------------------------------------------------------

def test_init_without_transactional_id_gives_fresh_ids(env):
    first = env.tc.init_producer_id(None, TIMEOUT)
    second = env.tc.init_producer_id(None, TIMEOUT)
    assert first[1] == second[1] == 0 and first[0] != second[0]


def test_init_bumps_the_epoch_and_checks_arguments(env):
    pid, epoch = env.tc.init_producer_id("tx", TIMEOUT)
    assert epoch == 0
    assert env.tc.init_producer_id("tx", TIMEOUT) == (pid, 1)
    assert env.state("tx").transaction_state == "Empty"
    for bad in (0, -5, 900001):
        with pytest.raises(InvalidTransactionTimeout):
            env.tc.init_producer_id("tx", bad)
    with pytest.raises(InvalidRequest):
        env.tc.init_producer_id("", TIMEOUT)
    with pytest.raises(InvalidRequest):
        env.tc.init_producer_id("tx", TIMEOUT, expected_producer_id=pid)


def test_kip360_expected_epoch_retry_and_fencing(env):
    pid, _ = env.tc.init_producer_id("tx", TIMEOUT)
    assert env.tc.init_producer_id("tx", TIMEOUT, pid, 0) == (pid, 1)
    # the same request again (its answer was lost): the current epoch, no new bump
    assert env.tc.init_producer_id("tx", TIMEOUT, pid, 0) == (pid, 1)
    with pytest.raises(ProducerFenced):
        env.tc.init_producer_id("tx", TIMEOUT, pid, 7)
    with pytest.raises(ProducerFenced):
        env.tc.init_producer_id("tx", TIMEOUT, pid + 100, 1)
    # a plain InitProducerId (a new instance) forgets the last epoch: the retry is now fenced
    assert env.tc.init_producer_id("tx", TIMEOUT) == (pid, 2)
    with pytest.raises(ProducerFenced):
        env.tc.init_producer_id("tx", TIMEOUT, pid, 1)


@pytest.mark.parametrize("tv", [1, 2])
def test_init_fences_a_zombie_with_an_open_transaction(env, tv):
    pid, old = env.begin(tv=tv)
    env.send(pid, old, values=(b"zombie-1",))
    new_pid, new = env.tc.init_producer_id("tx", TIMEOUT, transaction_version=tv)
    fence = old + 1
    assert new_pid == pid and new > fence
    # the aborted transaction's marker is at the fencing epoch (TV2: one above it)
    abort_epoch = fence + 1 if tv >= 2 else fence
    assert env.markers("t", 0) == [(pid, abort_epoch, False, env.broker.coordinator_epoch)]
    assert new == abort_epoch + 1
    assert env.committed() == []
    with pytest.raises(InvalidProducerEpoch):        # KIP-890 verification fences it
        env.send(pid, old, values=(b"zombie-2",))
    for epoch in (old, fence):
        with pytest.raises(ProducerFenced):
            env.tc.add_partitions_to_txn("tx", pid, epoch, [("t", 1)])
        with pytest.raises(ProducerFenced):
            env.tc.end_txn("tx", pid, epoch, True, transaction_version=1)
    env.tc.add_partitions_to_txn("tx", pid, new, [("t", 0), ("t", 1)])
    env.send(pid, new, "t", 1, values=(b"fresh",))
    env.send(pid, new, "t", 0, values=(b"fresh-0",))
    with pytest.raises(InvalidProducerEpoch):        # open txn here: the epoch check catches it
        env.send(pid, old, "t", 0, values=(b"zombie-3",))
    env.tc.end_txn("tx", pid, new, True, transaction_version=tv)
    assert env.committed("t", 1) == [b"fresh"]
    assert env.committed("t", 0) == [b"fresh-0"]


def plant(env: Env, txn_id: str, value: txn_log.TransactionLogValue, version: int = 1):
    """Append a __transaction_state record as a coordinator would have, then reopen."""
    batch = record_batch.build_batch([txn_log.encode_value(value, version)],
                                     keys=[txn_log.encode_key(txn_id)])
    index = env.broker.transaction_state_partition(txn_id)
    env.broker.partition(TRANSACTION_STATE_TOPIC, index).append(batch, durable=True)
    env.reopen()


def empty_value(pid: int, epoch: int, tv: int = 2) -> txn_log.TransactionLogValue:
    return txn_log.TransactionLogValue(pid, epoch, TIMEOUT, int(TxnState.EMPTY), None,
                                       START_MS, -1, client_transaction_version=tv)


def test_epoch_exhaustion_rotates_the_producer_id(env):
    old_pid = env.broker.next_producer_id()
    plant(env, "tx", empty_value(old_pid, EPOCH_EXHAUSTED))
    new_pid, epoch = env.tc.init_producer_id("tx", TIMEOUT, old_pid, EPOCH_EXHAUSTED)
    assert new_pid != old_pid and epoch == 0
    # a retry of that request (answer lost) is recognised through the previous producer id
    assert env.tc.init_producer_id("tx", TIMEOUT, old_pid, EPOCH_EXHAUSTED) == (new_pid, 0)
    env.reopen()
    # lastProducerEpoch is not persisted (as in Kafka): a retry spanning a restart is fenced
    with pytest.raises(ProducerFenced):
        env.tc.init_producer_id("tx", TIMEOUT, old_pid, EPOCH_EXHAUSTED)
    assert env.tc.init_producer_id("tx", TIMEOUT) == (new_pid, 1)


def test_epoch_exhaustion_without_expected_epoch(env):
    old_pid = env.broker.next_producer_id()
    plant(env, "tx", empty_value(old_pid, EPOCH_EXHAUSTED - 1))
    assert env.tc.init_producer_id("tx", TIMEOUT) == (old_pid, EPOCH_EXHAUSTED)
    new_pid, epoch = env.tc.init_producer_id("tx", TIMEOUT)
    assert (new_pid != old_pid, epoch) == (True, 0)


# -- AddPartitionsToTxn / AddOffsetsToTxn -------------------------------------------------

def test_add_partitions_errors(env):
    with pytest.raises(InvalidProducerIdMapping):
        env.tc.add_partitions_to_txn("nobody", 1, 0, [("t", 0)])
    pid, epoch = env.tc.init_producer_id("tx", TIMEOUT)
    with pytest.raises(InvalidProducerIdMapping):
        env.tc.add_partitions_to_txn("tx", pid + 1, epoch, [("t", 0)])
    with pytest.raises(ProducerFenced):
        env.tc.add_partitions_to_txn("tx", pid, epoch + 1, [("t", 0)])
    with pytest.raises(UnknownTopicOrPartition):
        env.tc.add_partitions_to_txn("tx", pid, epoch, [("no-such-topic", 0)])
    with pytest.raises(UnknownTopicOrPartition):
        env.tc.add_partitions_to_txn("tx", pid, epoch, [("t", 2)])
    assert env.state("tx").transaction_state == "Empty"


def test_add_partitions_starts_the_clock_and_writes_only_changes(env):
    pid, epoch = env.tc.init_producer_id("tx", TIMEOUT)
    env.clock.now += 5
    env.tc.add_partitions_to_txn("tx", pid, epoch, [("t", 0)])
    started = env.clock.now
    records = len(env.state_log_values("tx"))
    env.clock.now += 5
    env.tc.add_partitions_to_txn("tx", pid, epoch, [("t", 0)])        # nothing new: no write
    assert len(env.state_log_values("tx")) == records
    env.tc.add_partitions_to_txn("tx", pid, epoch, [("t", 1)])
    described = env.state("tx")
    assert described.transaction_start_time_ms == started
    assert [(t.topic, t.partitions) for t in described.topics] == [("t", [0, 1])]


def test_add_offsets_adds_the_groups_offsets_partition(env):
    pid, epoch = env.tc.init_producer_id("tx", TIMEOUT)
    env.tc.add_offsets_to_txn("tx", pid, epoch, "my-group")
    index = env.broker.offsets_partition("my-group")
    assert env.tc.verify_partition(pid, epoch, (CONSUMER_OFFSETS_TOPIC, index))
    env.tc.end_txn("tx", pid, epoch, True)
    assert [m[:3] for m in env.markers(CONSUMER_OFFSETS_TOPIC, index)] == [(pid, 1, True)]


# -- EndTxn -------------------------------------------------------------------------------

def test_commit_tv2_bumps_the_epoch_and_fences_late_writes(env):
    pid, epoch = env.begin(partitions=[("t", 0), ("t", 1)])
    assert env.tc.end_txn("tx", pid, epoch, True) == (pid, epoch + 1)
    cepoch = env.broker.coordinator_epoch
    for partition in (0, 1):
        assert env.markers("t", partition) == [(pid, epoch + 1, True, cepoch)]
        assert env.committed("t", partition) == [b"v"]
    assert env.state("tx").transaction_state == "CompleteCommit"
    with pytest.raises(InvalidProducerEpoch):              # a late write of the finished txn
        env.send(pid, epoch, values=(b"late",))
    # a retried EndTxn (old epoch) is answered with the current state; a mismatch is not
    assert env.tc.end_txn("tx", pid, epoch, True) == (pid, epoch + 1)
    with pytest.raises(InvalidTxnState):
        env.tc.end_txn("tx", pid, epoch, False)
    with pytest.raises(InvalidTxnState):                    # commit at the current epoch
        env.tc.end_txn("tx", pid, epoch + 1, True)
    with pytest.raises(ProducerFenced):
        env.tc.end_txn("tx", pid, epoch - 1, True)
    assert [v for v, _ in env.state_log_values("tx")] == [1] * 4


def test_commit_tv1_keeps_the_epoch_and_writes_value_v0(env):
    pid, epoch = env.begin(tv=1)
    assert env.tc.end_txn("tx", pid, epoch, True, transaction_version=1) == (pid, epoch)
    assert env.markers("t", 0) == [(pid, epoch, True, env.broker.coordinator_epoch)]
    assert env.tc.end_txn("tx", pid, epoch, True, transaction_version=1) == (pid, epoch)
    with pytest.raises(InvalidTxnState):
        env.tc.end_txn("tx", pid, epoch, False, transaction_version=1)
    with pytest.raises(ProducerFenced):
        env.tc.end_txn("tx", pid, epoch + 1, True, transaction_version=1)
    values = env.state_log_values("tx")
    assert [v for v, _ in values] == [0] * 4
    assert [TxnState(v.transaction_status).name for _, v in values] == \
        ["EMPTY", "ONGOING", "PREPARE_COMMIT", "COMPLETE_COMMIT"]


def test_abort_tv2_and_retries(env):
    pid, epoch = env.begin()
    assert env.tc.end_txn("tx", pid, epoch, False) == (pid, epoch + 1)
    assert env.markers("t", 0) == [(pid, epoch + 1, False, env.broker.coordinator_epoch)]
    assert env.committed() == []
    assert env.tc.end_txn("tx", pid, epoch, False) == (pid, epoch + 1)     # retry
    with pytest.raises(InvalidTxnState):
        env.tc.end_txn("tx", pid, epoch, True)
    # TV2: an abort at the current epoch with nothing open still bumps (client unsure)
    assert env.tc.end_txn("tx", pid, epoch + 1, False) == (pid, epoch + 2)
    assert len(env.markers("t", 0)) == 1


def test_end_txn_in_empty(env):
    pid, epoch = env.tc.init_producer_id("tx", TIMEOUT)
    with pytest.raises(InvalidTxnState):
        env.tc.end_txn("tx", pid, epoch, True, transaction_version=1)
    with pytest.raises(InvalidTxnState):
        env.tc.end_txn("tx", pid, epoch, False, transaction_version=1)
    with pytest.raises(InvalidTxnState):
        env.tc.end_txn("tx", pid, epoch, True)
    assert env.tc.end_txn("tx", pid, epoch, False) == (pid, epoch + 1)
    assert env.state("tx").transaction_state == "CompleteAbort"
    with pytest.raises(InvalidProducerIdMapping):
        env.tc.end_txn("unknown", pid, epoch, False)


def test_tv2_epoch_overflow_switches_to_a_preallocated_producer_id(env):
    old_pid = env.broker.next_producer_id()
    plant(env, "tx", empty_value(old_pid, EPOCH_EXHAUSTED - 1))
    pid, epoch = env.begin()
    assert (pid, epoch) == (old_pid, EPOCH_EXHAUSTED)
    new_pid, new_epoch = env.tc.end_txn("tx", pid, epoch, True)
    assert new_pid != old_pid and new_epoch == 0
    assert env.markers("t", 0) == [(old_pid, EPOCH_EXHAUSTED + 1, True,
                                    env.broker.coordinator_epoch)]
    assert env.tc.end_txn("tx", old_pid, epoch, True) == (new_pid, 0)        # retry
    with pytest.raises(InvalidProducerIdMapping):          # the retired producer id
        env.send(old_pid, epoch, values=(b"late",))
    env.tc.add_partitions_to_txn("tx", new_pid, 0, [("t", 1)])
    env.send(new_pid, 0, "t", 1)
    assert env.tc.end_txn("tx", new_pid, 0, True) == (new_pid, 1)


def test_tv2_overflow_decision_survives_a_crash_before_complete(env):
    old_pid = env.broker.next_producer_id()
    plant(env, "tx", empty_value(old_pid, EPOCH_EXHAUSTED - 1))
    pid, epoch = env.begin()
    failpoints.arm("coordinator.before_complete", "raise")
    with pytest.raises(FailpointTriggered):
        env.tc.end_txn("tx", pid, epoch, True)
    failpoints.disarm()
    env.reopen(crash=True)
    described = env.state("tx")
    assert described.transaction_state == "CompleteCommit"
    assert described.producer_id != old_pid and described.producer_epoch == 0


# -- concurrency --------------------------------------------------------------------------

def test_requests_during_a_transition_get_concurrent_transactions(env):
    pid, epoch = env.begin(partitions=[("t", 0), ("t", 1)])
    seen = []

    def meddle():
        for call in (lambda: env.tc.add_partitions_to_txn("tx", pid, epoch + 1, [("t", 0)]),
                     lambda: env.tc.init_producer_id("tx", TIMEOUT),
                     lambda: env.tc.end_txn("tx", pid, epoch, True)):
            try:
                call()
            except ConcurrentTransactions:
                seen.append(True)
        seen.append(env.tc.verify_partition(pid, epoch + 1, ("t", 1)))

    failpoints.arm("coordinator.after_marker", meddle, count=1)
    assert env.tc.end_txn("tx", pid, epoch, True) == (pid, epoch + 1)
    assert seen == [True, True, True, False]


def test_stuck_prepare_is_finished_by_the_next_request(env):
    pid, epoch = env.begin(partitions=[("t", 0), ("t", 1)])
    failpoints.arm("coordinator.after_marker", "raise", count=1)
    with pytest.raises(FailpointTriggered):
        env.tc.end_txn("tx", pid, epoch, True)
    assert env.state("tx").transaction_state == "PrepareCommit"
    with pytest.raises(ConcurrentTransactions):
        env.tc.add_partitions_to_txn("tx", pid, epoch + 1, [("t", 0)])
    assert env.tc.end_txn("tx", pid, epoch, True) == (pid, epoch + 1)     # the retry
    assert env.state("tx").transaction_state == "CompleteCommit"
    for partition in (0, 1):
        assert env.committed("t", partition) == [b"v"]


def test_timeout_sweep_finishes_a_stuck_prepare(env):
    pid, epoch = env.begin()
    failpoints.arm("coordinator.before_complete", "raise", count=1)
    with pytest.raises(FailpointTriggered):
        env.tc.end_txn("tx", pid, epoch, False)
    env.tc.abort_timed_out_transactions()
    assert env.state("tx").transaction_state == "CompleteAbort"


def test_a_failed_fence_is_not_bumped_twice(env):
    pid, epoch = env.begin()
    env.clock.now += TIMEOUT + 1
    failpoints.arm("coordinator.before_prepare", "raise", count=1)
    with pytest.raises(FailpointTriggered):
        env.tc.abort_timed_out_transactions()
    # the fencing epoch holds in memory although PrepareAbort was not written
    assert env.state("tx").transaction_state == "Ongoing"
    assert env.state("tx").producer_epoch == epoch + 1
    with pytest.raises(InvalidProducerEpoch):
        env.send(pid, epoch, "t", 1)
    env.tc.abort_timed_out_transactions()
    assert (env.state("tx").transaction_state, env.state("tx").producer_epoch) == \
        ("CompleteAbort", epoch + 2)
    assert env.markers("t", 0) == [(pid, epoch + 2, False, env.broker.coordinator_epoch)]


def test_threads_on_many_ids_with_a_contended_one_and_sweeps(env):
    ids = [f"p{i}" for i in range(4)]
    rounds = 5
    failures = []
    stop = threading.Event()

    def producer(txn_id, partition):
        try:
            for _ in range(rounds):
                pid, epoch = env.tc.init_producer_id(txn_id, TIMEOUT)
                env.tc.add_partitions_to_txn(txn_id, pid, epoch, [("t", partition)])
                env.send(pid, epoch, "t", partition, values=(txn_id.encode(),))
                env.tc.end_txn(txn_id, pid, epoch, True)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    def contender():
        while not stop.is_set():
            try:
                pid, epoch = env.tc.init_producer_id("shared", TIMEOUT)
                env.tc.add_partitions_to_txn("shared", pid, epoch, [("t", 0)])
                env.tc.end_txn("shared", pid, epoch, False)
            except (ConcurrentTransactions, ProducerFenced, InvalidProducerIdMapping):
                pass                                 # the other contender got in between
            except Exception as exc:  # noqa: BLE001
                failures.append(exc)

    def sweeper():
        while not stop.is_set():
            env.tc.abort_timed_out_transactions()
            env.tc.expire_transactional_ids()
            env.tc.list_transactions()

    workers = [threading.Thread(target=producer, args=(txn_id, i % 2))
               for i, txn_id in enumerate(ids)]
    helpers = [threading.Thread(target=contender) for _ in range(2)]
    helpers.append(threading.Thread(target=sweeper))
    for thread in workers + helpers:
        thread.start()
    for thread in workers:
        thread.join(120)
    stop.set()
    for thread in helpers:
        thread.join(120)
    assert not any(t.is_alive() for t in workers + helpers), "deadlock"
    assert not failures, failures
    committed = env.committed("t", 0) + env.committed("t", 1)
    for txn_id in ids:
        assert committed.count(txn_id.encode()) == rounds
        assert env.state(txn_id).transaction_state == "CompleteCommit"
    assert env.state("shared").transaction_state in ("Empty", "Ongoing", "CompleteAbort")


def test_a_closed_coordinator_refuses_requests(env):
    env.tc.close()
    with pytest.raises(CoordinatorNotAvailable):
        env.tc.init_producer_id("tx", TIMEOUT)
    with pytest.raises(CoordinatorNotAvailable):
        env.tc.list_transactions()
    env.tc.abort_timed_out_transactions()          # the periodic tasks just return


# -- KIP-890 part 1 -----------------------------------------------------------------------

def test_verify_partition(env):
    pid, epoch = env.tc.init_producer_id("tx", TIMEOUT)
    assert not env.tc.verify_partition(pid, epoch, ("t", 0))
    env.tc.add_partitions_to_txn("tx", pid, epoch, [("t", 0)])
    assert env.tc.verify_partition(pid, epoch, ("t", 0))
    assert not env.tc.verify_partition(pid, epoch, ("t", 1))
    assert not env.tc.verify_partition(pid, epoch + 1, ("t", 0))
    assert not env.tc.verify_partition(pid + 50, epoch, ("t", 0))
    env.tc.end_txn("tx", pid, epoch, True)
    assert not env.tc.verify_partition(pid, epoch + 1, ("t", 0))
    with pytest.raises(InvalidTxnState):      # the partition refuses the unverified write
        env.send(pid, epoch + 1, "t", 1)


# -- timeouts and expiry ------------------------------------------------------------------

def test_timeout_abort_fences_the_zombie(env):
    pid, epoch = env.begin()
    env.clock.now += TIMEOUT
    env.tc.abort_timed_out_transactions()                   # not yet: start + timeout == now
    assert env.state("tx").transaction_state == "Ongoing"
    env.clock.now += 1
    env.tc.abort_timed_out_transactions()
    described = env.state("tx")
    assert described.transaction_state == "CompleteAbort"
    assert described.producer_epoch == epoch + 2            # fence + the TV2 abort bump
    assert env.markers("t", 0) == [(pid, epoch + 2, False, env.broker.coordinator_epoch)]
    with pytest.raises(InvalidProducerEpoch):
        env.send(pid, epoch, values=(b"zombie",))
    with pytest.raises(ProducerFenced):
        env.tc.end_txn("tx", pid, epoch, True)
    with pytest.raises(ProducerFenced):
        env.tc.add_partitions_to_txn("tx", pid, epoch, [("t", 1)])
    assert env.tc.init_producer_id("tx", TIMEOUT) == (pid, epoch + 3)


def test_timeout_abort_tv1_bumps_once(env):
    pid, epoch = env.begin(tv=1)
    env.clock.now += TIMEOUT + 1
    env.tc.abort_timed_out_transactions()
    assert env.markers("t", 0) == [(pid, epoch + 1, False, env.broker.coordinator_epoch)]
    with pytest.raises(ProducerFenced):
        env.tc.end_txn("tx", pid, epoch, True, transaction_version=1)


def test_expiry_tombstones_idle_ids(env):
    expiration = env.broker.config["transactional.id.expiration.ms"]
    pid, epoch = env.begin("done")
    env.tc.end_txn("done", pid, epoch, True)
    busy_pid, _ = env.begin("busy", partitions=[("t", 1)])
    env.clock.now += expiration - 1
    env.tc.expire_transactional_ids()
    assert env.state("done").error_code == 0
    env.clock.now += 1                                      # lastUpdate <= now - expiration
    env.tc.expire_transactional_ids()
    assert env.state("done").error_code == 105             # TRANSACTIONAL_ID_NOT_FOUND
    assert env.state("busy").transaction_state == "Ongoing"
    assert env.state_log_values("done")[-1] == (-1, None)  # the tombstone
    assert not env.tc.verify_partition(pid, epoch + 1, ("t", 0))
    env.reopen()
    assert env.state("done").error_code == 105
    assert env.state("busy").producer_id == busy_pid
    new_pid, new_epoch = env.tc.init_producer_id("done", TIMEOUT)
    assert new_pid != pid and new_epoch == 0


# -- persistence and recovery -------------------------------------------------------------

def test_state_survives_a_restart(env):
    pid, epoch = env.begin(partitions=[("t", 0), ("t", 1)])
    before = env.state("tx")
    env.reopen()
    assert env.state("tx") == before
    assert env.tc.verify_partition(pid, epoch, ("t", 1))
    assert env.tc.end_txn("tx", pid, epoch, True) == (pid, epoch + 1)


@pytest.mark.parametrize("point", COMMIT_POINTS)
def test_commit_decision_completes_after_a_crash(env, point):
    pid, epoch = env.begin(partitions=[("t", 0), ("t", 1)])
    failpoints.arm(point, "raise", count=1)
    with pytest.raises(FailpointTriggered):
        env.tc.end_txn("tx", pid, epoch, True)
    failpoints.disarm()
    first_cepoch = env.broker.coordinator_epoch
    env.reopen(crash=True)
    check_decision_after_restart(env, point, pid, epoch, first_cepoch)


def check_decision_after_restart(env: Env, point: str, pid: int, epoch: int,
                                 first_cepoch: int) -> None:
    described = env.state("tx")
    if point == "coordinator.before_prepare":
        assert described.transaction_state == "Ongoing"     # nothing was decided
        assert env.committed("t", 0) == [] and env.markers("t", 0) == []
        env.clock.now = described.transaction_start_time_ms + TIMEOUT + 1
        env.tc.abort_timed_out_transactions()
        assert env.state("tx").transaction_state == "CompleteAbort"
        return
    assert (described.transaction_state, described.producer_epoch) == \
        ("CompleteCommit", epoch + 1)
    for partition in (0, 1):
        assert env.committed("t", partition) == [b"v"]
        markers = env.markers("t", partition)
        assert {m[:3] for m in markers} == {(pid, epoch + 1, True)}
        if point in ("coordinator.after_prepare", "coordinator.before_complete"):
            assert markers[-1][3] == env.broker.coordinator_epoch > first_cepoch


CHILD = textwrap.dedent("""
    import sys
    from logstore import record_batch
    from txn.broker import Broker
    config = {"transaction.state.log.num.partitions": 3, "offsets.topic.num.partitions": 3,
              "num.partitions": 2}
    broker = Broker(sys.argv[1], config, background=False)
    broker.ensure_topic("t")
    tc = broker.transaction_coordinator
    pid, epoch = tc.init_producer_id("tx", 60000)
    tc.add_partitions_to_txn("tx", pid, epoch, [("t", 0), ("t", 1)])
    for p in (0, 1):
        batch = record_batch.build_batch([b"v"], producer_id=pid, producer_epoch=epoch,
                                         base_sequence=0, transactional=True)
        broker.partition("t", p).append(batch, durable=True)
    print(pid, epoch, broker.coordinator_epoch, flush=True)
    tc.end_txn("tx", pid, epoch, True)
    print("survived", flush=True)
""")


@pytest.mark.parametrize("point", COMMIT_POINTS)
def test_child_killed_at_each_failpoint_completes_on_reopen(tmp_path, point):
    path = tmp_path / "data"
    env_vars = dict(os.environ, **{failpoints.ENV_VAR: f"{point}=crash"})
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env_vars,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "survived" not in proc.stdout
    pid, epoch, first_cepoch = map(int, proc.stdout.split())
    env = Env(path)
    try:
        check_decision_after_restart(env, point, pid, epoch, first_cepoch)
    finally:
        env.broker.close()


# -- Describe / List ----------------------------------------------------------------------

def test_describe_and_list(env):
    pid_a, _ = env.begin("a")
    pid_b, _ = env.tc.init_producer_id("b", TIMEOUT)
    described = env.tc.describe_transactions(["a", "", "zzz"])
    assert [d.error_code for d in described] == [0, 42, 105]
    assert described[0].transaction_state == "Ongoing" and described[0].producer_id == pid_a
    assert described[0].transaction_timeout_ms == TIMEOUT
    listed = env.tc.list_transactions()
    assert [(t.transactional_id, t.transaction_state) for t in listed.transaction_states] == \
        [("a", "Ongoing"), ("b", "Empty")]
    only = env.tc.list_transactions(states=["Empty", "Bogus"])
    assert [t.transactional_id for t in only.transaction_states] == ["b"]
    assert only.unknown_state_filters == ["Bogus"]
    assert env.tc.list_transactions(states=["Bogus"]).transaction_states == []
    by_pid = env.tc.list_transactions(producer_ids=[pid_b])
    assert [t.producer_id for t in by_pid.transaction_states] == [pid_b]
