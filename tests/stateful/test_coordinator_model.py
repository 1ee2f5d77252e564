"""Stateful test: the real TransactionCoordinator against a model of Kafka's state table.

Method: hypothesis drives a real Broker (tmp dir, fake clock, `background=False`) with
InitProducerId, AddPartitions, AddOffsets, EndTxn (commit/abort, TV1/TV2, current or stale
epoch), transactional produces, zombie produces, timeouts, transactional-id expiry and restarts
(clean close or abandon = kill -9). The model is KAFKA_FACTS §6.1/§6.3/§6.4 written out as plain
Python: per transactional id its producer id, epoch, state, partitions, client version and
timestamps. After every step:
  - describe_transactions agrees with the model (state, producer id, epoch, partitions);
  - the epoch of a producer id never goes down;
  - every partition holds exactly the markers of the transactions the model finished, and no
    partition has an open transaction the coordinator does not know (no hanging transaction).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from logstore import check, record_batch
from txn.broker import CONSUMER_OFFSETS_TOPIC, Broker
from txn.errors import (
    InvalidProducerEpoch, InvalidProducerIdMapping, InvalidTxnState, ProducerFenced)

CONFIG = {"transaction.state.log.num.partitions": 3, "offsets.topic.num.partitions": 3,
          "num.partitions": 2, "transactional.id.expiration.ms": 3_600_000}
IDS = ("a", "b")
DATA = [("t", 0), ("t", 1)]
GROUP = "g"
TIMEOUT = 10_000
EXPIRATION = CONFIG["transactional.id.expiration.ms"]
EPOCH_MAX = 32767
COMPLETED = ("Empty", "CompleteCommit", "CompleteAbort")


class Clock:
    def __init__(self):
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


@dataclass
class ModelTxn:
    producer_id: int
    epoch: int
    state: str = "Empty"
    partitions: set = field(default_factory=set)
    tv: int = 2                  # client transaction version of the last transition
    start: int = -1
    last_update: int = 0


class CoordinatorMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.path = tempfile.mkdtemp(prefix="coordinator-model-")
        self.clock = Clock()
        self.broker = self._open()
        self.broker.ensure_topic("t")
        self.offsets = (CONSUMER_OFFSETS_TOPIC, self.broker.offsets_partition(GROUP))
        self.model: dict[str, ModelTxn] = {}
        self.markers: dict[tuple[str, int], set] = {}
        self.sequences: dict[tuple, int] = {}
        self.high_epoch: dict[int, int] = {}

    def _open(self) -> Broker:
        return Broker(self.path, dict(CONFIG), time_ms=self.clock, background=False)

    @property
    def tc(self):
        return self.broker.transaction_coordinator

    def teardown(self):
        try:
            self.broker.close()
            problems = check.check(self.path)
            assert not problems, problems
        finally:
            shutil.rmtree(self.path, ignore_errors=True)

    # -- model helpers -------------------------------------------------------------------

    def _finish(self, m: ModelTxn, commit: bool, marker_epoch: int) -> None:
        """The model's Prepare* -> markers -> Complete*."""
        for tp in m.partitions:
            self.markers.setdefault(tp, set()).add((m.producer_id, marker_epoch, commit))
        m.epoch = marker_epoch
        m.state = "CompleteCommit" if commit else "CompleteAbort"
        m.partitions = set()
        m.last_update = self.clock.now

    def _fence_and_abort(self, m: ModelTxn) -> None:
        fence = m.epoch + 1
        self._finish(m, False, min(fence + 1, EPOCH_MAX) if m.tv >= 2 else fence)

    def _expect(self, error, call):
        try:
            result = call()
        except (InvalidProducerIdMapping, ProducerFenced, InvalidTxnState) as exc:
            assert isinstance(exc, error), f"expected {error}, got {exc!r}"
            return None
        assert error is None, f"expected {error.__name__}, got {result!r}"
        return result

    # -- rules ---------------------------------------------------------------------------

    @rule(txn_id=st.sampled_from(IDS), tv=st.sampled_from([1, 2]))
    def init(self, txn_id, tv):
        pid, epoch = self.tc.init_producer_id(txn_id, TIMEOUT, transaction_version=tv)
        m = self.model.get(txn_id)
        if m is None:
            assert epoch == 0
            assert pid not in {other.producer_id for other in self.model.values()}
            self.model[txn_id] = ModelTxn(pid, 0, tv=tv, last_update=self.clock.now)
            return
        assert pid == m.producer_id
        if m.state == "Ongoing":
            self._fence_and_abort(m)
        m.epoch += 1
        assert epoch == m.epoch
        m.state, m.partitions, m.tv, m.start = "Empty", set(), tv, -1
        m.last_update = self.clock.now

    @rule(txn_id=st.sampled_from(IDS), wanted=st.sets(st.sampled_from(DATA), min_size=1),
          offsets=st.booleans(), tv=st.sampled_from([1, 2]))
    def add_partitions(self, txn_id, wanted, offsets, tv):
        m = self.model.get(txn_id)
        if offsets:
            wanted = {self.offsets}
        pid, epoch = (0, 0) if m is None else (m.producer_id, m.epoch)
        if offsets:
            call = lambda: self.tc.add_offsets_to_txn(txn_id, pid, epoch, GROUP,  # noqa: E731
                                                      transaction_version=tv)
        else:
            call = lambda: self.tc.add_partitions_to_txn(txn_id, pid, epoch,  # noqa: E731
                                                         sorted(wanted),
                                                         transaction_version=tv)
        self._expect(InvalidProducerIdMapping if m is None else None, call)
        if m is None or (m.state == "Ongoing" and wanted <= m.partitions):
            return
        if m.state in COMPLETED:
            m.start = self.clock.now
        m.state, m.tv, m.last_update = "Ongoing", tv, self.clock.now
        m.partitions |= wanted

    @rule(txn_id=st.sampled_from(IDS), wrong_pid=st.booleans())
    def add_partitions_stale(self, txn_id, wrong_pid):
        m = self.model.get(txn_id)
        if m is None or (m.epoch == 0 and not wrong_pid):
            return
        pid = m.producer_id + 7 if wrong_pid else m.producer_id
        epoch = m.epoch if wrong_pid else m.epoch - 1
        self._expect(InvalidProducerIdMapping if wrong_pid else ProducerFenced,
                     lambda: self.tc.add_partitions_to_txn(txn_id, pid, epoch, [DATA[0]]))

    @rule(txn_id=st.sampled_from(IDS), index=st.integers(0, 1))
    def produce(self, txn_id, index):
        m = self.model.get(txn_id)
        tp = DATA[index]
        if m is None or m.state != "Ongoing" or tp not in m.partitions:
            return
        self._send(m.producer_id, m.epoch, tp)

    def _send(self, pid: int, epoch: int, tp):
        key = (pid, epoch, tp)
        seq = self.sequences.get(key, 0)
        batch = record_batch.build_batch([b"x"], producer_id=pid, producer_epoch=epoch,
                                         base_sequence=seq, transactional=True,
                                         now_ms=self.clock.now)
        self.broker.partition(*tp).append(batch)
        self.sequences[key] = seq + 1

    @rule(txn_id=st.sampled_from(IDS), index=st.integers(0, 1))
    def zombie_produce(self, txn_id, index):
        m = self.model.get(txn_id)
        if m is None or m.epoch == 0:
            return
        try:
            self._send(m.producer_id, m.epoch - 1, DATA[index])
        except InvalidProducerEpoch:
            return
        raise AssertionError("a write at a fenced epoch was accepted")

    @rule(txn_id=st.sampled_from(IDS), commit=st.booleans(), tv=st.sampled_from([1, 2]),
          stale=st.booleans())
    def end_txn(self, txn_id, commit, tv, stale):
        m = self.model.get(txn_id)
        if m is None:
            self._expect(InvalidProducerIdMapping,
                         lambda: self.tc.end_txn(txn_id, 0, 0, commit, transaction_version=tv))
            return
        if stale and m.epoch == 0:
            return
        epoch = m.epoch - 1 if stale else m.epoch
        error, expected = self._model_end(m, commit, tv, epoch)
        result = self._expect(error, lambda: self.tc.end_txn(
            txn_id, m.producer_id, epoch, commit, transaction_version=tv))
        if error is None:
            assert result == (m.producer_id, expected)

    def _model_end(self, m: ModelTxn, commit: bool, tv: int, epoch: int):
        """(error class or None, epoch returned) and the model updated (KAFKA_FACTS §6.4)."""
        done = "CompleteCommit" if commit else "CompleteAbort"
        if tv < 2:
            if epoch != m.epoch:
                return ProducerFenced, None
            if m.state == "Ongoing":
                m.tv = tv
                self._finish(m, commit, m.epoch)
                return None, m.epoch
            return (None, m.epoch) if m.state == done else (InvalidTxnState, None)
        retry = m.epoch == epoch + 1
        valid = (retry or epoch == m.epoch) if m.state.startswith("Complete") \
            else epoch == m.epoch
        if not valid:
            return ProducerFenced, None
        if m.state == "Ongoing" or (not commit and not retry):
            if m.state != "Ongoing":
                m.start = self.clock.now
            m.tv = tv
            self._finish(m, commit, m.epoch + 1)
            return None, m.epoch
        if m.state == done and retry:
            return None, m.epoch
        return InvalidTxnState, None

    @rule(ms=st.integers(1, TIMEOUT // 2))
    def tick(self, ms):
        self.clock.now += ms

    @rule()
    def time_out(self):
        self.clock.now += TIMEOUT + 1
        self.tc.abort_timed_out_transactions()
        for m in self.model.values():
            if m.state == "Ongoing" and m.start + TIMEOUT < self.clock.now:
                self._fence_and_abort(m)

    @rule()
    def expire(self):
        self.clock.now += EXPIRATION
        self.tc.expire_transactional_ids()
        for txn_id, m in list(self.model.items()):
            if m.state in COMPLETED and m.last_update <= self.clock.now - EXPIRATION:
                del self.model[txn_id]

    @rule(crash=st.booleans())
    def restart(self, crash):
        if crash:
            self.broker.abandon()
        else:
            self.broker.close()
        self.broker = self._open()

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def coordinator_agrees_with_the_model(self):
        for described in self.tc.describe_transactions(IDS):
            m = self.model.get(described.transactional_id)
            if m is None:
                assert described.error_code == 105, described
                continue
            got = (described.transaction_state, described.producer_id, described.producer_epoch,
                   {(t.topic, p) for t in described.topics for p in t.partitions})
            assert got == (m.state, m.producer_id, m.epoch, m.partitions), (got, m)

    @invariant()
    def epochs_never_go_down(self):
        for m in self.model.values():
            assert m.epoch >= self.high_epoch.get(m.producer_id, -1)
            self.high_epoch[m.producer_id] = m.epoch

    @invariant()
    def partitions_hold_exactly_the_finished_markers(self):
        open_txns = {m.producer_id: m.partitions for m in self.model.values()
                     if m.state == "Ongoing"}
        for tp in DATA + [self.offsets]:
            part = self.broker.partition(*tp)
            found = set()
            for batch in part.log.batches():
                if batch.is_control:
                    control = batch.control_record()
                    found.add((batch.producer_id, batch.producer_epoch,
                               control.type == record_batch.COMMIT))
            assert found == self.markers.get(tp, set()), (tp, found)
            for pid in part.ongoing_transactions():
                assert tp in open_txns.get(pid, ()), f"hanging transaction of {pid} in {tp}"


CoordinatorMachine.TestCase.settings = settings(
    settings.default, stateful_step_count=30,
    max_examples=max(10, settings.default.max_examples // 3))
test_coordinator_model = CoordinatorMachine.TestCase
