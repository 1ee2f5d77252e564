"""TxnPartition: producer-state-checked appends, markers, the LSO, read_committed fetches, and
their survival across clean and unclean restarts.

Method: a real Broker on a tmp dir. Most tests write markers directly (as the coordinator would)
with KIP-890 verification turned off, so they isolate the partition layer; the verification
tests turn it on and go through the real transaction coordinator.
"""

from __future__ import annotations

import os

import pytest

from logstore import record_batch
from txn.broker import Broker
from txn.errors import InvalidProducerEpoch, InvalidTxnState, OutOfOrderSequence
from txn.fetch import committed_batches

SMALL = {"transaction.state.log.num.partitions": 2, "offsets.topic.num.partitions": 2}
NO_VERIFY = {**SMALL, "transaction.partition.verification.enable": False}


def open_broker(path, config=NO_VERIFY) -> Broker:
    return Broker(str(path), dict(config), background=False)


def data(values, pid=-1, epoch=-1, seq=-1, txn=False):
    return record_batch.build_batch([v.encode() for v in values], producer_id=pid,
                                    producer_epoch=epoch, base_sequence=seq, transactional=txn)


def committed_values(part, offset=0):
    result = part.fetch(offset, 1 << 20, "read_committed")
    return [r.value.decode() for b in committed_batches(result.batches(),
                                                        result.aborted_transactions)
            for r in b.records()]


def all_values(part, offset=0):
    result = part.fetch(offset, 1 << 20, "read_uncommitted")
    return [r.value.decode() for b in result.batches() if not b.is_control for r in b.records()]


def test_idempotent_duplicate_returns_the_original_offsets_and_writes_nothing(tmp_path):
    broker = open_broker(tmp_path / "d")
    try:
        broker.ensure_topic("t")
        part = broker.partition("t", 0)
        first = part.append(data(["a", "b"], pid=7, epoch=0, seq=0))
        again = part.append(data(["a", "b"], pid=7, epoch=0, seq=0))
        assert again.duplicate and (again.first_offset, again.last_offset) == (0, 1)
        assert not first.duplicate
        assert part.log_end_offset == 2
        with pytest.raises(OutOfOrderSequence):
            part.append(data(["c"], pid=7, epoch=0, seq=5))
        part.append(data(["c"], pid=7, epoch=0, seq=2))
        assert all_values(part) == ["a", "b", "c"]
    finally:
        broker.close()


def test_lso_holds_back_an_open_transaction_until_its_marker(tmp_path):
    broker = open_broker(tmp_path / "d")
    try:
        broker.ensure_topic("t")
        part = broker.partition("t", 0)
        part.append(data(["plain"]))
        part.append(data(["t1", "t2"], pid=3, epoch=0, seq=0, txn=True))
        part.append(data(["later"]))
        assert part.last_stable_offset == 1 and part.high_watermark == 4
        assert committed_values(part) == ["plain"]
        assert all_values(part) == ["plain", "t1", "t2", "later"]
        marker = part.write_marker(3, 0, True, broker.coordinator_epoch)
        assert marker == 4 and part.last_stable_offset == 5
        assert committed_values(part) == ["plain", "t1", "t2", "later"]
    finally:
        broker.close()


def test_aborted_transactions_are_indexed_and_filtered_for_read_committed(tmp_path):
    broker = open_broker(tmp_path / "d")
    try:
        broker.ensure_topic("t")
        part = broker.partition("t", 0)
        part.append(data(["a1"], pid=1, epoch=0, seq=0, txn=True))
        part.append(data(["b1"], pid=2, epoch=0, seq=0, txn=True))
        part.append(data(["a2"], pid=1, epoch=0, seq=1, txn=True))
        part.write_marker(1, 0, False, 0)                    # abort pid 1
        part.write_marker(2, 0, True, 0)                     # commit pid 2
        entries = part.log.txn_index_entries()
        assert [(e.producer_id, e.first_offset, e.last_offset) for e in entries] == [(1, 0, 3)]
        assert entries[0].last_stable_offset == 1            # pid 2's txn was still open at 1
        result = part.fetch(0, 1 << 20, "read_committed")
        assert result.aborted_transactions == [(1, 0)]
        assert committed_values(part) == ["b1"]
        assert committed_values(part, 2) == []               # from the middle: a2 still hidden
        assert all_values(part) == ["a1", "b1", "a2"]
    finally:
        broker.close()


def test_an_empty_abort_leaves_no_txn_index_entry(tmp_path):
    broker = open_broker(tmp_path / "d")
    try:
        broker.ensure_topic("t")
        part = broker.partition("t", 0)
        part.write_marker(9, 0, False, 0)
        assert part.log.txn_index_entries() == []
        assert part.last_stable_offset == part.high_watermark == 1
    finally:
        broker.close()


def test_producer_state_and_open_transactions_survive_a_clean_restart(tmp_path):
    path = tmp_path / "d"
    broker = open_broker(path)
    broker.ensure_topic("t")
    part = broker.partition("t", 0)
    part.append(data(["x"], pid=5, epoch=2, seq=0))
    part.append(data(["open"], pid=6, epoch=0, seq=0, txn=True))
    broker.close()
    assert any(n.endswith(".snapshot") for n in os.listdir(path / "t-0"))
    broker = open_broker(path)
    try:
        part = broker.partition("t", 0)
        assert part.append(data(["x"], pid=5, epoch=2, seq=0)).duplicate
        with pytest.raises(InvalidProducerEpoch):
            part.append(data(["y"], pid=5, epoch=1, seq=1))
        assert part.last_stable_offset == 1
        part.write_marker(6, 0, False, broker.coordinator_epoch)
        assert committed_values(part) == ["x"]
    finally:
        broker.close()


def test_unclean_restart_rebuilds_state_and_a_lost_txn_index(tmp_path):
    path = tmp_path / "d"
    broker = open_broker(path)
    broker.ensure_topic("t")
    part = broker.partition("t", 0)
    part.append(data(["keep"], pid=1, epoch=0, seq=0, txn=True))
    part.append(data(["drop"], pid=2, epoch=0, seq=0, txn=True))
    part.write_marker(2, 0, False, 0)
    part.write_marker(1, 0, True, 0)
    part.append(data(["open"], pid=3, epoch=0, seq=0, txn=True))
    broker.abandon()                                        # kill -9: no snapshot, no marker
    for name in os.listdir(path / "t-0"):
        if name.endswith(".txnindex"):
            os.unlink(path / "t-0" / name)                  # and the txnindex never hit disk
    broker = open_broker(path)
    try:
        part = broker.partition("t", 0)
        assert [(e.producer_id, e.first_offset) for e in part.log.txn_index_entries()] == [(2, 1)]
        assert part.last_stable_offset == 4                 # pid 3 still open
        assert committed_values(part) == ["keep"]
        # The duplicate window was rebuilt by replay: a retry of pid 2's batch is recognised.
        assert part.append(data(["drop"], pid=2, epoch=0, seq=0, txn=True)).duplicate
    finally:
        broker.close()


def test_a_transactional_batch_needs_the_partition_in_the_transaction(tmp_path):
    broker = open_broker(tmp_path / "d", SMALL)              # verification on
    try:
        broker.ensure_topic("t")
        part = broker.partition("t", 0)
        coordinator = broker.transaction_coordinator
        pid, epoch = coordinator.init_producer_id("tx-1", 60000)
        with pytest.raises(InvalidTxnState):
            part.append(data(["x"], pid=pid, epoch=epoch, seq=0, txn=True))
        coordinator.add_partitions_to_txn("tx-1", pid, epoch, [("t", 0)])
        part.append(data(["x"], pid=pid, epoch=epoch, seq=0, txn=True))
        assert part.last_stable_offset == 0
        new_pid, new_epoch = coordinator.end_txn("tx-1", pid, epoch, True)
        assert committed_values(part) == ["x"]
        # A late batch of the finished transaction cannot open a hanging transaction.
        with pytest.raises((InvalidTxnState, InvalidProducerEpoch)):
            part.append(data(["late"], pid=pid, epoch=epoch, seq=1, txn=True))
        assert part.last_stable_offset == part.high_watermark
    finally:
        broker.close()


def test_a_marker_between_verification_and_append_voids_the_guard(tmp_path):
    broker = open_broker(tmp_path / "d", SMALL)
    try:
        broker.ensure_topic("t")
        part = broker.partition("t", 0)
        coordinator = broker.transaction_coordinator
        pid, epoch = coordinator.init_producer_id("tx-2", 60000)
        coordinator.add_partitions_to_txn("tx-2", pid, epoch, [("t", 0)])
        guard = part._verify(pid, epoch, True, "client")
        assert guard is not None
        part.write_marker(pid, epoch, False, broker.coordinator_epoch)   # ABA: txn ended
        with pytest.raises(InvalidTxnState):
            part._check_guard(pid, guard)
    finally:
        broker.close()


def test_a_fetch_that_sees_the_lso_pass_an_abort_also_sees_its_txn_index_entry(tmp_path):
    """Regression (found by scripts/torture.py): write_marker let the producer state complete
    an aborted transaction (the LSO moved past it) before its .txnindex entry was written, so a
    read_committed fetch in between returned the aborted records as committed (G1a). Method: a
    fetch runs at the moment the producer state completes the transaction."""
    broker = open_broker(tmp_path / "d")
    try:
        broker.ensure_topic("t")
        part = broker.partition("t", 0)
        part.append(data(["a1", "a2"], pid=5, epoch=0, seq=0, txn=True))
        seen = []
        complete = part.producers.complete_marker

        def complete_then_fetch(*args, **kwargs):
            completed = complete(*args, **kwargs)
            seen.append(committed_values(part))
            return completed
        part.producers.complete_marker = complete_then_fetch
        part.write_marker(5, 0, False, broker.coordinator_epoch)
        assert seen == [[]] and committed_values(part) == []
    finally:
        broker.close()
