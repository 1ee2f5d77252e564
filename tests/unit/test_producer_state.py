"""ProducerStateManager: Kafka's per-partition producer state, one rule per test.

Goal: every rule of txn/producer_state.py (ProducerAppendInfo's epoch, sequence, duplicate and
transaction-state checks; markers; ongoing transactions and the LSO; expiry; snapshots, load,
truncate and replay) behaves as Kafka's ProducerStateManager does.
Method: a manager over a real temporary partition directory and a fake clock; appends go
through prepare_append + update with the offsets a log would assign, markers through
prepare_marker + complete_marker. Replay is driven by batches read back from a real Log.
"""

from __future__ import annotations

import logging
import os

import pytest

from logstore import record_batch
from logstore._ffi import BatchInfo
from logstore.log import Log
from txn.errors import (InvalidProducerEpoch, InvalidTxnState, OutOfOrderSequence,
                        TransactionCoordinatorFenced)
from txn.producer_state import (INT32_MAX, NUM_BATCHES_TO_RETAIN, AppendOrigin, CompletedTxn,
                                DuplicateBatch, ProducerAppendInfo, ProducerStateManager,
                                decrement_sequence, increment_sequence, read_snapshot,
                                snapshot_path)

CLIENT, COORDINATOR, REPLICATION = (AppendOrigin.CLIENT, AppendOrigin.COORDINATOR,
                                    AppendOrigin.REPLICATION)
EXPIRATION_MS = 10_000
NOW_MS = 1_000_000


class Clock:
    def __init__(self, now_ms: int = NOW_MS):
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def psm(tmp_path, clock):
    return ProducerStateManager(str(tmp_path), "orders-0",
                                producer_id_expiration_ms=EXPIRATION_MS, time_ms=clock)


def append(m, pid, epoch, seq, count, first_offset, *, txn=False, ts=NOW_MS, origin=CLIENT):
    """prepare_append + update as a partition does; returns what prepare_append returned."""
    info = m.prepare_append(pid, epoch, seq, count - 1, txn, ts, origin,
                            first_offset=first_offset)
    if isinstance(info, ProducerAppendInfo):
        m.update(info, first_offset, first_offset + count - 1)
    m.check_invariants()
    return info


def marker(m, pid, epoch, offset, *, commit=True, coordinator_epoch=0, ts=NOW_MS,
           origin=COORDINATOR):
    m.prepare_marker(pid, epoch, coordinator_epoch, origin, offset=offset)
    completed = m.complete_marker(pid, epoch, coordinator_epoch, commit, offset, ts)
    m.check_invariants()
    return completed


# -- sequence arithmetic --------------------------------------------------------------------------


def test_sequence_arithmetic_wraps_past_int_max_to_zero():
    assert increment_sequence(5, 3) == 8
    assert increment_sequence(INT32_MAX, 1) == 0
    assert increment_sequence(INT32_MAX - 1, 3) == 1
    assert decrement_sequence(1, 3) == INT32_MAX - 1
    assert decrement_sequence(0, 1) == INT32_MAX
    assert decrement_sequence(8, 3) == 5


# -- sequences --------------------------------------------------------------------------------------


def test_unknown_producer_is_accepted_at_any_sequence(psm):
    # KIP-360: no state (e.g. retention deleted it) means no sequence to compare with.
    assert isinstance(append(psm, 7, 3, 4242, 2, 0), ProducerAppendInfo)
    assert psm.entry(7).last_seq == 4243


def test_next_batch_must_continue_the_last_sequence(psm):
    append(psm, 7, 0, 0, 3, 0)
    append(psm, 7, 0, 3, 2, 3)
    assert psm.entry(7).last_seq == 4 and psm.entry(7).last_data_offset == 4


def test_out_of_order_sequence_is_refused_naming_pid_epoch_partition_offset_sequences(psm):
    append(psm, 7, 2, 0, 5, 0)
    with pytest.raises(OutOfOrderSequence) as err:
        append(psm, 7, 2, 7, 1, 5)
    text = str(err.value)
    for part in ("producer 7", "epoch 2", "orders-0", "offset 5", "7 (incoming",
                 "4 (current end", "expected 5"):
        assert part in text, (part, text)


def test_new_epoch_must_start_at_sequence_zero(psm):
    append(psm, 7, 0, 0, 3, 0)
    with pytest.raises(OutOfOrderSequence, match="new epoch"):
        append(psm, 7, 1, 3, 1, 3)


def test_new_epoch_at_sequence_zero_is_accepted_and_clears_the_window(psm):
    append(psm, 7, 0, 0, 3, 0)
    append(psm, 7, 1, 0, 1, 3)
    entry = psm.entry(7)
    assert entry.producer_epoch == 1 and [b.last_offset for b in entry.batches] == [3]


def test_sequence_wraps_from_int_max_to_zero(psm):
    append(psm, 7, 0, INT32_MAX - 1, 2, 0)             # ends exactly at INT32_MAX
    append(psm, 7, 0, 0, 1, 2)                         # wrap-around accepted
    append(psm, 7, 0, 1, 1, 3)
    assert psm.entry(7).last_seq == 1


def test_a_batch_spanning_the_wrap_ends_at_the_wrapped_sequence(psm):
    append(psm, 7, 0, INT32_MAX - 1, 3, 0)             # sequences MAX-1, MAX, 0
    assert psm.entry(7).last_seq == 0
    assert psm.entry(7).batches[-1].first_seq == INT32_MAX - 1
    append(psm, 7, 0, 1, 1, 3)
    dup = append(psm, 7, 0, INT32_MAX - 1, 3, 9)
    assert dup == DuplicateBatch(0, 2, NOW_MS)


def test_sequence_after_int_max_other_than_zero_is_refused(psm):
    append(psm, 7, 0, INT32_MAX, 1, 0)
    with pytest.raises(OutOfOrderSequence, match="expected 0"):
        append(psm, 7, 0, 1, 1, 1)


def test_replication_does_not_check_sequences(psm):
    append(psm, 7, 0, 0, 3, 0)
    assert isinstance(append(psm, 7, 0, 40, 1, 3, origin=REPLICATION), ProducerAppendInfo)


# -- duplicates -------------------------------------------------------------------------------------


def test_duplicate_returns_the_original_offsets_and_timestamp(psm):
    append(psm, 7, 0, 0, 3, 10, ts=111)
    append(psm, 7, 0, 3, 2, 13, ts=222)
    before = psm.entries()
    assert append(psm, 7, 0, 0, 3, 15, ts=999) == DuplicateBatch(10, 12, 111)
    assert append(psm, 7, 0, 3, 2, 15, ts=999) == DuplicateBatch(13, 14, 222)
    assert psm.entries() == before


def test_duplicate_window_holds_only_the_last_five_batches(psm):
    assert NUM_BATCHES_TO_RETAIN == 5                  # Kafka's ProducerStateEntry
    for i in range(6):
        append(psm, 7, 0, i, 1, i)
    assert isinstance(append(psm, 7, 0, 1, 1, 99), DuplicateBatch)
    with pytest.raises(OutOfOrderSequence):
        append(psm, 7, 0, 0, 1, 99)                    # fell out of the window


def test_duplicate_needs_exactly_the_same_sequence_range(psm):
    append(psm, 7, 0, 0, 3, 0)
    with pytest.raises(OutOfOrderSequence):
        append(psm, 7, 0, 0, 2, 3)                     # overlaps, but is not the same batch


def test_the_same_sequences_at_a_new_epoch_are_a_new_batch(psm):
    append(psm, 7, 0, 0, 3, 0)
    assert isinstance(append(psm, 7, 1, 0, 3, 3), ProducerAppendInfo)
    assert psm.entry(7).batches[-1].last_offset == 5


def test_replication_never_reports_duplicates(psm):
    append(psm, 7, 0, 0, 3, 0)
    assert isinstance(append(psm, 7, 0, 0, 3, 3, origin=REPLICATION), ProducerAppendInfo)


# -- epochs -----------------------------------------------------------------------------------------


def test_stale_epoch_is_refused(psm):
    append(psm, 7, 5, 0, 1, 0)
    with pytest.raises(InvalidProducerEpoch) as err:
        append(psm, 7, 4, 1, 1, 1)
    assert "producer 7" in str(err.value) and "orders-0" in str(err.value)
    assert "is 4" in str(err.value) and "epoch 5" in str(err.value)


def test_stale_epoch_from_replication_is_only_logged(psm, caplog):
    append(psm, 7, 5, 0, 1, 0)
    with caplog.at_level(logging.WARNING, logger="txn.producer_state"):
        append(psm, 7, 4, 0, 1, 1, origin=REPLICATION)
    assert "smaller than the last seen epoch 5" in caplog.text
    assert psm.entry(7).producer_epoch == 4            # applied as Kafka does


def test_coordinator_origin_checks_the_epoch_only(psm):
    # Transactional offset commits: no sequence (-1), any order.
    append(psm, 7, 2, -1, 1, 0, txn=True, origin=COORDINATOR)
    append(psm, 7, 2, -1, 2, 1, txn=True, origin=COORDINATOR)
    with pytest.raises(InvalidProducerEpoch):
        append(psm, 7, 1, -1, 1, 3, txn=True, origin=COORDINATOR)


def test_prepare_append_changes_nothing_even_when_it_refuses(psm):
    append(psm, 7, 0, 0, 3, 0, txn=True)
    before = (psm.entries(), psm.ongoing_transactions())
    psm.prepare_append(7, 0, 3, 0, True, NOW_MS + 5, CLIENT)
    psm.prepare_append(8, 0, 0, 0, True, NOW_MS + 5, CLIENT)
    for args in ((7, 0, 9, 0, True), (7, 0, 3, 0, False), (7, -1, 3, 0, True)):
        with pytest.raises((OutOfOrderSequence, InvalidTxnState, InvalidProducerEpoch)):
            psm.prepare_append(*args, NOW_MS, CLIENT)
    assert (psm.entries(), psm.ongoing_transactions()) == before


def test_update_refuses_an_info_whose_producer_changed_since_prepare(psm):
    info = psm.prepare_append(7, 0, 0, 0, False, NOW_MS, CLIENT)
    append(psm, 7, 0, 0, 1, 0)
    with pytest.raises(AssertionError, match="changed between"):
        psm.update(info, 1, 1)


def test_batches_without_producer_id_are_not_tracked(psm):
    info = psm.prepare_append(-1, -1, -1, 4, False, NOW_MS, CLIENT)
    assert isinstance(info, ProducerAppendInfo) and not info.is_tracked
    psm.update(info, 0, 4)
    assert psm.entries() == []


def test_an_unknown_origin_is_a_caller_error(psm):
    with pytest.raises(ValueError, match="origin"):
        psm.prepare_append(7, 0, 0, 0, False, NOW_MS, "LEADER")


def test_update_may_override_the_timestamp_for_log_append_time(psm):
    info = psm.prepare_append(7, 0, 0, 0, False, 5, CLIENT)
    psm.update(info, 0, 0, timestamp=777)
    assert psm.entry(7).last_timestamp == 777
    assert psm.prepare_append(7, 0, 0, 0, False, 5, CLIENT) == DuplicateBatch(0, 0, 777)


# -- transactions ---------------------------------------------------------------------------------


def test_transactional_batch_opens_a_transaction_at_its_first_offset(psm):
    append(psm, 7, 0, 0, 2, 10, txn=True)
    append(psm, 7, 0, 2, 2, 14, txn=True)              # same transaction: first offset stays
    assert psm.ongoing_transactions() == {7: 10}
    assert psm.entry(7).current_txn_first_offset == 10


def test_non_transactional_write_during_an_open_transaction_is_refused(psm):
    append(psm, 7, 0, 0, 2, 10, txn=True)
    with pytest.raises(InvalidTxnState, match="producer 7.*offset 12.*orders-0.*offset 10"):
        append(psm, 7, 0, 2, 1, 12)


def test_commit_marker_ends_the_transaction(psm):
    append(psm, 7, 0, 0, 2, 10, txn=True)
    assert marker(psm, 7, 0, 12) == CompletedTxn(7, 10, 12, False)
    assert psm.ongoing_transactions() == {} and not psm.entry(7).has_open_txn


def test_abort_marker_reports_an_aborted_transaction(psm):
    append(psm, 7, 0, 0, 2, 10, txn=True)
    assert marker(psm, 7, 0, 12, commit=False) == CompletedTxn(7, 10, 12, True)


def test_marker_of_an_empty_transaction_returns_none(psm):
    # KAFKA-10702: no data, no CompletedTxn, no .txnindex entry.
    append(psm, 7, 0, 0, 2, 10)
    assert marker(psm, 7, 0, 12) is None


def test_marker_with_a_stale_epoch_is_refused(psm):
    append(psm, 7, 3, 0, 1, 0, txn=True)
    with pytest.raises(InvalidProducerEpoch, match="is 2"):
        psm.prepare_marker(7, 2, 0, COORDINATOR, offset=1)
    assert psm.ongoing_transactions() == {7: 0}


def test_marker_from_an_older_coordinator_is_fenced(psm):
    append(psm, 7, 0, 0, 1, 0, txn=True)
    marker(psm, 7, 0, 1, coordinator_epoch=5)
    append(psm, 7, 0, 1, 1, 2, txn=True)
    with pytest.raises(TransactionCoordinatorFenced, match="4 \\(zombie\\), 5 \\(current\\)"):
        psm.prepare_marker(7, 0, 4, COORDINATOR, offset=3)
    psm.prepare_marker(7, 0, 5, COORDINATOR)           # same coordinator epoch: fine


def test_replicated_marker_problems_are_only_logged(psm, caplog):
    append(psm, 7, 3, 0, 1, 0, txn=True)
    marker(psm, 7, 3, 1, coordinator_epoch=5)
    with caplog.at_level(logging.WARNING, logger="txn.producer_state"):
        psm.prepare_marker(7, 2, 4, REPLICATION, offset=2)
    assert "smaller than the last seen epoch" in caplog.text and "zombie" in caplog.text


def test_epoch_bumped_by_a_marker_then_sequence_zero_is_accepted(psm):
    # KIP-890 part 2: every transaction end bumps the epoch; the window is cleared.
    append(psm, 7, 0, 0, 5, 0, txn=True)
    marker(psm, 7, 1, 5)
    assert psm.entry(7).producer_epoch == 1 and psm.entry(7).is_empty
    assert isinstance(append(psm, 7, 1, 0, 1, 6, txn=True), ProducerAppendInfo)


def test_after_an_epoch_bump_by_marker_a_nonzero_sequence_is_refused(psm):
    append(psm, 7, 0, 0, 5, 0, txn=True)
    marker(psm, 7, 1, 5)
    with pytest.raises(OutOfOrderSequence, match="expected 0"):
        append(psm, 7, 1, 5, 1, 6, txn=True)


def test_marker_at_the_same_epoch_keeps_the_duplicate_window(psm):
    append(psm, 7, 0, 0, 2, 0, txn=True)
    marker(psm, 7, 0, 2)
    assert append(psm, 7, 0, 0, 2, 3, txn=True) == DuplicateBatch(0, 1, NOW_MS)


def test_marker_for_an_unknown_producer_creates_an_entry_without_batches(psm):
    # KAFKA-9144: the marker's timestamp and coordinator epoch must be remembered.
    assert marker(psm, 9, 4, 0, coordinator_epoch=2, ts=NOW_MS + 1) is None
    entry = psm.entry(9)
    assert (entry.producer_epoch, entry.coordinator_epoch, entry.last_timestamp) == (
        4, 2, NOW_MS + 1)
    assert entry.is_empty and entry.last_data_offset == -1


# -- unstable offsets -----------------------------------------------------------------------------


def test_first_unstable_offset_is_the_oldest_open_transaction(psm):
    assert psm.first_unstable_offset() is None
    append(psm, 7, 0, 0, 1, 0)                         # idempotent only: stable
    append(psm, 8, 0, 0, 1, 1, txn=True)
    append(psm, 9, 0, 0, 1, 2, txn=True)
    assert psm.first_unstable_offset() == 1
    assert psm.ongoing_transactions() == {8: 1, 9: 2}
    marker(psm, 8, 0, 3)
    assert psm.first_unstable_offset() == 2
    marker(psm, 9, 0, 4, commit=False)
    assert psm.first_unstable_offset() is None


def test_last_stable_offset_of_a_completed_txn_is_the_oldest_other_open_txn(psm):
    append(psm, 7, 0, 0, 1, 0, txn=True)
    append(psm, 8, 0, 0, 1, 1, txn=True)
    append(psm, 9, 0, 0, 1, 2, txn=True)
    completed = marker(psm, 8, 0, 3, commit=False)
    assert psm.last_stable_offset(completed) == 0
    completed = marker(psm, 7, 0, 4, commit=False)
    assert psm.last_stable_offset(completed) == 2


def test_last_stable_offset_skips_the_completing_producer_before_it_completes(psm):
    # Kafka computes the LSO for the .txnindex entry before completing the transaction.
    append(psm, 7, 0, 0, 1, 0, txn=True)
    append(psm, 8, 0, 0, 1, 1, txn=True)
    assert psm.last_stable_offset(CompletedTxn(7, 0, 2, True)) == 1
    assert psm.last_stable_offset(CompletedTxn(8, 1, 2, True)) == 0


def test_last_stable_offset_without_other_open_txns_is_past_the_marker(psm):
    append(psm, 7, 0, 0, 1, 0, txn=True)
    completed = marker(psm, 7, 0, 1, commit=False)
    assert psm.last_stable_offset(completed) == 2


# -- expiry ---------------------------------------------------------------------------------------


def test_idle_producers_expire_at_the_expiration_time(psm):
    append(psm, 7, 0, 0, 1, 0, ts=NOW_MS)
    append(psm, 8, 0, 0, 1, 1, ts=NOW_MS + 1)
    assert psm.remove_expired(NOW_MS + EXPIRATION_MS) == [7]
    assert [e.producer_id for e in psm.entries()] == [8]


def test_expiry_never_drops_a_producer_with_an_open_transaction(psm):
    append(psm, 7, 0, 0, 1, 0, txn=True, ts=NOW_MS)
    assert psm.remove_expired(NOW_MS + 100 * EXPIRATION_MS) == []
    assert psm.ongoing_transactions() == {7: 0}


def test_marker_timestamps_count_for_expiry(psm):
    append(psm, 7, 0, 0, 1, 0, txn=True, ts=NOW_MS)
    marker(psm, 7, 0, 1, ts=NOW_MS + EXPIRATION_MS)
    assert psm.remove_expired(NOW_MS + EXPIRATION_MS + 1) == []
    assert psm.remove_expired(NOW_MS + 2 * EXPIRATION_MS) == [7]


# -- snapshots ------------------------------------------------------------------------------------


def test_take_snapshot_writes_a_20_digit_file_and_skips_an_existing_one(psm, tmp_path):
    append(psm, 7, 0, 0, 1, 0)
    path = psm.take_snapshot(1)
    assert os.path.basename(path) == "00000000000000000001.snapshot"
    mtime = os.stat(path).st_mtime_ns
    append(psm, 8, 0, 0, 1, 1)
    assert psm.take_snapshot(1) is None
    assert os.stat(path).st_mtime_ns == mtime and len(read_snapshot(path)) == 1
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_load_restores_the_state_with_only_the_last_batch_per_producer(psm, tmp_path, clock):
    append(psm, 7, 2, 0, 2, 0, ts=NOW_MS)
    append(psm, 7, 2, 2, 3, 2, ts=NOW_MS + 1)
    append(psm, 8, 0, 0, 1, 5, txn=True, ts=NOW_MS + 2)
    marker(psm, 9, 1, 6, coordinator_epoch=3, ts=NOW_MS + 3)
    psm.take_snapshot(7)
    fresh = ProducerStateManager(str(tmp_path), "orders-0",
                                 producer_id_expiration_ms=EXPIRATION_MS, time_ms=clock)
    assert fresh.load(0, 7) == 7
    fresh.check_invariants()
    assert fresh.ongoing_transactions() == {8: 5}
    assert fresh.entry(9).coordinator_epoch == 3 and fresh.entry(9).is_empty
    assert append(fresh, 7, 2, 2, 3, 7) == DuplicateBatch(2, 4, NOW_MS + 1)
    with pytest.raises(OutOfOrderSequence):
        append(fresh, 7, 2, 0, 2, 7)                   # only the last batch was saved


def test_load_without_snapshots_replays_from_the_log_start(psm):
    append(psm, 7, 0, 0, 1, 0)
    assert psm.load(3, 10) == 3
    assert psm.entries() == []


def test_load_uses_the_newest_snapshot_at_or_below_the_log_end(psm):
    for offset in (1, 2, 3):
        append(psm, offset, 0, 0, 1, offset - 1)
        psm.take_snapshot(offset)
    assert psm.load(0, 2) == 2
    assert [e.producer_id for e in psm.entries()] == [1, 2]
    assert psm.snapshot_offsets() == [1, 2]            # the one above the log end is gone


def test_load_deletes_snapshots_below_the_log_start(psm):
    append(psm, 7, 0, 0, 1, 0)
    psm.take_snapshot(1)
    psm.take_snapshot(4)
    assert psm.load(2, 5) == 4
    assert psm.snapshot_offsets() == [4]
    assert psm.load(5, 5) == 5 and psm.snapshot_offsets() == []


def test_load_skips_an_unreadable_snapshot_and_deletes_it(psm, caplog):
    append(psm, 7, 0, 0, 1, 0)
    psm.take_snapshot(1)
    append(psm, 8, 0, 0, 1, 1)
    newest = psm.take_snapshot(2)
    with open(newest, "r+b") as f:
        f.truncate(9)
    with caplog.at_level(logging.WARNING, logger="txn.producer_state"):
        assert psm.load(0, 2) == 1
    assert "shorter than the 10-byte header" in caplog.text
    assert psm.snapshot_offsets() == [1] and [e.producer_id for e in psm.entries()] == [7]


def test_load_drops_expired_producers_but_keeps_open_transactions(psm, clock):
    append(psm, 7, 0, 0, 1, 0, ts=NOW_MS)
    append(psm, 8, 0, 0, 1, 1, txn=True, ts=NOW_MS)
    append(psm, 9, 0, 0, 1, 2, ts=NOW_MS + EXPIRATION_MS)
    psm.take_snapshot(3)
    clock.now_ms = NOW_MS + EXPIRATION_MS
    assert psm.load(0, 3) == 3
    assert [e.producer_id for e in psm.entries()] == [8, 9]


def test_load_removes_interrupted_snapshot_writes(psm, tmp_path):
    leftover = snapshot_path(str(tmp_path), 5) + ".tmp"
    with open(leftover, "wb") as f:
        f.write(b"partial")
    psm.load(0, 10)
    assert not os.path.exists(leftover)


def test_delete_snapshots_below_keeps_the_offset_itself(psm):
    for offset in (1, 2, 3):
        psm.take_snapshot(offset)
    assert psm.delete_snapshots_below(2) == 1
    assert psm.snapshot_offsets() == [2, 3]


def test_truncate_to_drops_later_snapshots_and_reloads(psm):
    append(psm, 7, 0, 0, 1, 0, txn=True)
    psm.take_snapshot(1)
    marker(psm, 7, 0, 1)
    append(psm, 8, 0, 0, 1, 2)
    psm.take_snapshot(3)
    assert psm.truncate_to(2) == 1
    assert psm.snapshot_offsets() == [1]
    assert psm.ongoing_transactions() == {7: 0} and psm.entry(8) is None


# -- replay ---------------------------------------------------------------------------------------


def _info(base, last, pid, epoch, seq, *, attributes=0, control_type=-1, coordinator_epoch=-1,
          count=None, ts=NOW_MS):
    return BatchInfo(0, base, last, ts, ts, pid, 0, seq, last - base + 1 if count is None
                     else count, epoch, attributes, control_type, coordinator_epoch)


def test_replay_rebuilds_the_state_from_a_real_log(tmp_path, clock):
    log = Log.open(str(tmp_path / "orders-0"))
    try:
        log.append([b"a", b"b"], producer_id=7, producer_epoch=0, base_sequence=0)
        log.append([b"c"], producer_id=8, producer_epoch=1, base_sequence=0, transactional=True)
        log.append([b"d"])
        log.append_batch(record_batch.build_control_batch(record_batch.ABORT, 8, 1, 3, NOW_MS),
                         validate=False)
        log.append([b"e"], producer_id=9, producer_epoch=0, base_sequence=0, transactional=True)
        live = ProducerStateManager(log.directory, log.name, time_ms=clock)
        completed = [live.replay(info) for info in log.batch_infos(0)]
        live.check_invariants()
        assert [c for c in completed if c] == [CompletedTxn(8, 2, 4, True)]
        assert live.ongoing_transactions() == {9: 5}
        assert live.entry(7).last_seq == 1 and live.entry(8).coordinator_epoch == 3
        live.take_snapshot(log.log_end_offset)         # the suite's checker reads it too
    finally:
        log.close()


def test_replayed_marker_returns_the_completed_transaction(psm):
    psm.replay(_info(0, 1, 7, 0, 0, attributes=0x10))
    completed = psm.replay(_info(2, 2, 7, 1, -1, attributes=0x30, control_type=1,
                                 coordinator_epoch=4))
    assert completed == CompletedTxn(7, 0, 2, False)
    assert psm.entry(7).producer_epoch == 1 and psm.entry(7).coordinator_epoch == 4


def test_replay_logs_stale_epochs_instead_of_raising(psm, caplog):
    psm.replay(_info(0, 0, 7, 5, 0, attributes=0x10))
    psm.replay(_info(1, 1, 7, 5, -1, attributes=0x30, control_type=0, coordinator_epoch=4))
    with caplog.at_level(logging.WARNING, logger="txn.producer_state"):
        psm.replay(_info(2, 2, 7, 4, -1, attributes=0x30, control_type=0, coordinator_epoch=3))
    assert "smaller than the last seen epoch" in caplog.text and "zombie" in caplog.text


def test_replay_ignores_batches_without_producer_and_emptied_control_batches(psm):
    assert psm.replay(_info(0, 4, -1, -1, -1)) is None
    psm.replay(_info(5, 5, 7, 0, 0, attributes=0x10))
    assert psm.replay(_info(6, 6, 7, 0, -1, attributes=0x30, control_type=-1, count=0)) is None
    assert psm.ongoing_transactions() == {7: 5}
    assert [e.producer_id for e in psm.entries()] == [7]
