"""Injected I/O faults: a clear error, nothing partial visible, nothing acknowledged lost.

Goal: prove what the store promises when the disk misbehaves (DESIGN.md, "Durability"):
  - a failed append raises LogDirFull (ENOSPC) or KafkaStorageError (EIO) and leaves no partial
    batch readable; after ENOSPC clears, appends go on at the same offset;
  - after an I/O error on the data path, or any failed fsync, the log is offline: appends,
    flushes and rolls raise LogOffline until it is reopened and recovered, so a sync that failed
    is never retried as if it had worked (Linux may report the next fsync clean after dropping
    the dirty pages);
  - a crash after N bytes (CRASH_AFTER, at many N) loses no acknowledged append and no
    committed transaction; recovery cuts the torn tail the dead process left;
  - failed renames and copy-truncates leave the old files whole.
Method: faults from the C io table (csrc/io.c through logstore._ffi) on real files in
tmp_path; a Log or the embedded clients run until the fault fires; the log is reopened and
compared with what was acknowledged; where durability is the claim, the power-cut journal
(tests/crash/powercut.py) drops what was not fsynced before reopening. The autouse checker
validates every directory left behind.
"""

from __future__ import annotations

import errno
import os
import random

import pytest
from crash_workloads import (FAST_BROKER, TIMEOUT_S, TXN_BYTES_MAX, TxnWorkload,
                             assert_durable_outcomes, read_back)
from powercut import power_cut, start_journal

from logstore import _ffi
from logstore.errors import KafkaStorageError, LogDirFull, LogOffline
from logstore.log import Log
from logstore.store import LogStore
from txn import Consumer, KafkaError, KafkaException, Producer, TopicPartition

CONFIG = {"segment.bytes": 3000, "index.interval.bytes": 200}
BATCH_VALUE_BYTES = 60
CRASH_WORKLOAD_APPENDS = 50
CRASH_BYTE_STEP = 41             # CRASH_AFTER budgets tried: 0, 41, 82, ... past the workload
TXN_CRASH_POINTS = 8


def values(log: Log) -> list[bytes]:
    return [record.value for batch in log.batches() for record in batch.records()]


def value(tag: str, i: int) -> bytes:
    return f"{tag}-{i}-".encode().ljust(BATCH_VALUE_BYTES, b".")


def fill(log: Log, count: int, tag: str, durable: bool = False) -> list[bytes]:
    written = [value(tag, i) for i in range(count)]
    for v in written:
        log.append([v], durable=durable)
    return written


def on_disk_size(log: Log) -> int:
    return os.path.getsize(log.active_segment.log_path)


# ------------------------------------------------------------------------------------------------
# Failed appends


@pytest.mark.parametrize("partial", [0, 1, 30, 61, 100])
def test_out_of_space_mid_write_is_log_dir_full_and_appends_resume_when_space_returns(
        tmp_path, partial):
    path = str(tmp_path / "t-0")
    with Log.open(path, CONFIG) as log:
        acked = fill(log, 5, "before")
        size, end = log.active_segment.size, log.log_end_offset
        # The disk fills up: three appends each get `partial` bytes out, then ENOSPC.
        _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_SHORT_WRITE, errno.ENOSPC, count=3,
                          nbytes=partial)
        for attempt in range(3):
            with pytest.raises(LogDirFull) as info:
                log.append([value("full", attempt)])
            assert info.value.errno == errno.ENOSPC and "append to" in str(info.value)
            assert log.log_end_offset == end and log.active_segment.size == size
            assert on_disk_size(log) == size              # the partial bytes were cut
            assert values(log) == acked                   # nothing partial is readable
        assert not log.offline                            # out of space is not a disk failure
        assert log.append([b"space is back"]).first_offset == end
        acked.append(b"space is back")
    with Log.open(path, CONFIG) as log:
        assert values(log) == acked


@pytest.mark.parametrize("kind, partial", [(_ffi.FAULT_ERROR, 0), (_ffi.FAULT_SHORT_WRITE, 45)])
def test_an_io_error_on_append_takes_the_log_offline_until_it_is_reopened(tmp_path, kind,
                                                                          partial):
    path = str(tmp_path / "t-0")
    log = Log.open(path, CONFIG)
    acked = fill(log, 4, "before")
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, kind, errno.EIO, count=1, nbytes=partial)
    with pytest.raises(KafkaStorageError) as info:
        log.append([b"failed"])
    assert not isinstance(info.value, LogDirFull) and info.value.errno == errno.EIO
    assert log.offline and values(log) == acked          # readable: only what was acked
    for refused in (lambda: log.append([b"more"]), log.flush, log.roll):
        with pytest.raises(LogOffline, match="reopen it to recover"):
            refused()
    log.close()                                           # offline: no clean-shutdown marker
    with Log.open(path, CONFIG) as log:
        assert not log.recovery_report.clean_shutdown
        assert values(log) == acked
        log.append([b"after reopening"])


def test_a_crash_mid_append_leaves_the_torn_bytes_and_recovery_cuts_them(tmp_path):
    """Regression: the clean-up of a failed write bypassed the io table, so a simulated crash
    still tidied the file up afterwards, which a dead process cannot do."""
    path = str(tmp_path / "t-0")
    log = Log.open(path, CONFIG)
    acked = fill(log, 3, "before")
    size = log.active_segment.size
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_CRASH_AFTER, nbytes=30)
    with pytest.raises(KafkaStorageError, match="simulated crash"):
        log.append([b"torn"])
    assert on_disk_size(log) == size + 30 and values(log) == acked
    log.abandon()
    _ffi.io_fault_clear()
    with Log.open(path, CONFIG) as log:
        assert log.recovery_report.truncated_bytes == 30
        assert values(log) == acked


def test_out_of_space_fails_a_transaction_that_aborts_and_the_next_one_commits(tmp_path):
    conf = {"log.dirs": str(tmp_path / "data"), **FAST_BROKER}
    producer = Producer({**conf, "transactional.id": "full"})
    producer.init_transactions(TIMEOUT_S)
    producer.begin_transaction()
    producer.produce("t", value=b"one")
    producer.commit_transaction(TIMEOUT_S)
    producer.begin_transaction()
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_ERROR, errno.ENOSPC)
    producer.produce("t", value=b"lost")
    with pytest.raises(KafkaException) as info:
        producer.commit_transaction(TIMEOUT_S)
    error = info.value.args[0]
    assert error.code() == KafkaError.KAFKA_STORAGE_ERROR and error.txn_requires_abort()
    _ffi.io_fault_clear()
    producer.abort_transaction(TIMEOUT_S)
    producer.begin_transaction()
    producer.produce("t", value=b"two")
    producer.commit_transaction(TIMEOUT_S)
    producer.close()
    reader = Consumer({**conf, "group.id": "r", "isolation.level": "read_committed",
                       "enable.partition.eof": True, "enable.auto.commit": False})
    reader.assign([TopicPartition("t", 0, 0)])
    got = []
    while (message := reader.poll(TIMEOUT_S)) is not None and message.error() is None:
        got.append(message.value())
    reader.close()
    assert got == [b"one", b"two"]


# ------------------------------------------------------------------------------------------------
# Failed syncs


def test_a_failed_fsync_takes_the_log_offline_and_durable_appends_survive_a_power_cut(
        tmp_path):
    path = str(tmp_path / "t-0")
    start_journal(str(tmp_path))
    log = Log.open(path, CONFIG)
    durable = fill(log, 6, "durable", durable=True)
    _ffi.io_fault_set(_ffi.IO_OP_SYNC, _ffi.FAULT_ERROR, errno.EIO, count=1)
    with pytest.raises(KafkaStorageError, match="fdatasync"):
        log.append([b"not durable"], durable=True)
    assert _ffi.io_fault_fired() == 1 and log.offline
    # The fault is spent: a real fsync would now succeed, having dropped the dirty pages.
    # The log must not report the data safe, nor take more.
    with pytest.raises(LogOffline):
        log.flush()
    with pytest.raises(LogOffline):
        log.append([b"refused"], durable=True)
    log.abandon()
    power_cut(str(tmp_path))
    with Log.open(path, CONFIG) as log:
        got = values(log)
    assert got[: len(durable)] == durable and got[len(durable):] in ([], [b"not durable"])


def test_a_failed_fsync_while_rolling_takes_the_log_offline(tmp_path):
    """Regression: a sync failing while the active segment was sealed left it half sealed and
    the log writable; the next append built on it and closing failed on its time index."""
    path = str(tmp_path / "t-0")
    log = Log.open(path, CONFIG)
    acked = fill(log, 5, "before")
    _ffi.io_fault_set(_ffi.IO_OP_SYNC, _ffi.FAULT_ERROR, errno.EIO, count=1)
    with pytest.raises(KafkaStorageError):
        for i in range(100):                              # until an append rolls
            log.append([value("rolling", i)])
            acked.append(value("rolling", i))
    assert log.offline
    with pytest.raises(LogOffline):
        log.append([b"refused"])
    log.close()
    with Log.open(path, CONFIG) as log:
        assert values(log) == acked and len(log.segments) >= 1


# ------------------------------------------------------------------------------------------------
# Failed truncations and renames


def test_a_failed_copy_truncate_takes_the_log_offline_and_keeps_the_segment_whole(tmp_path):
    """Regression: truncating under readers' views copied the kept prefix with
    copy_file_range, outside the io table, so faults never reached it; and a failed
    truncation left the log writable with its indexes already cut."""
    path = str(tmp_path / "t-0")
    log = Log.open(path, CONFIG)
    acked = fill(log, 8, "v")
    held = log.read(0)                       # a reader holds views: the cut must copy
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_ERROR, errno.EIO, count=1)
    with pytest.raises(KafkaStorageError, match=r"\.swap"):
        log.truncate_to(4)
    assert log.offline and values(log) == acked
    assert [r.value for b in held.batches() for r in b.records()][0] == acked[0]
    with pytest.raises(LogOffline):
        log.append([b"refused"])
    log.close()
    with Log.open(path, CONFIG) as log:
        assert values(log) == acked
        log.read(0)
        assert log.truncate_to(4) == 4 and values(log) == acked[:4]


def test_a_failed_rename_when_deleting_a_topic_keeps_the_topic_and_its_data(tmp_path):
    """Regression: the rename of a deleted topic's directory bypassed the io table."""
    with LogStore(str(tmp_path / "store")) as store:
        store.create_topic("t")
        store.log("t", 0).append([b"kept"], durable=True)
        _ffi.io_fault_set(_ffi.IO_OP_RENAME, _ffi.FAULT_ERROR, errno.EIO,
                          path_filter="-delete")
        with pytest.raises(KafkaStorageError, match="delete topic 't'"):
            store.delete_topic("t")
        _ffi.io_fault_clear()
        assert store.has_topic("t") and values(store.log("t", 0)) == [b"kept"]


def test_a_failed_checkpoint_rename_keeps_the_previous_checkpoint(tmp_path):
    checkpoint_file = tmp_path / "store" / "recovery-point-offset-checkpoint"
    with LogStore(str(tmp_path / "store")) as store:
        store.create_topic("t")
        store.write_checkpoints()
        before = checkpoint_file.read_bytes()
        store.log("t", 0).append([b"x"], durable=True)
        _ffi.io_fault_set(_ffi.IO_OP_RENAME, _ffi.FAULT_ERROR, errno.EIO,
                          path_filter="recovery-point")
        with pytest.raises(KafkaStorageError, match="rename"):
            store.write_checkpoints()
        assert checkpoint_file.read_bytes() == before
        _ffi.io_fault_clear()
    assert checkpoint_file.read_bytes() != before        # the clean close wrote the new one


# ------------------------------------------------------------------------------------------------
# Crash after N bytes


def crash_workload(path: str, budget: int) -> tuple[list[bytes], bytes | None]:
    """Appends (every fifth durable) until the disk dies after `budget` bytes: (acknowledged
    values, the value whose append failed)."""
    acked: list[bytes] = []
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_CRASH_AFTER, nbytes=budget)
    log = Log.open(path, CONFIG)
    attempt = None
    try:
        for i in range(CRASH_WORKLOAD_APPENDS):
            attempt = value("v", i)
            log.append([attempt], durable=i % 5 == 4)
            acked.append(attempt)
        attempt = None
    except KafkaStorageError:
        pass
    finally:
        log.abandon()
        _ffi.io_fault_clear()
    return acked, attempt


def test_a_crash_after_n_bytes_at_many_n_loses_nothing_acknowledged(tmp_path):
    torn_tails = crashes = 0
    for budget in range(0, CRASH_WORKLOAD_APPENDS * 110, CRASH_BYTE_STEP):
        path = str(tmp_path / f"n{budget}" / "t-0")
        acked, failed = crash_workload(path, budget)
        crashes += failed is not None
        with Log.open(path, CONFIG) as log:
            got = values(log)
            torn_tails += log.recovery_report.truncated_bytes > 0
        # A failed append may be whole on disk (its write passed, its sync did not).
        assert got == acked or got == acked + [failed], f"budget {budget}"
    assert crashes > 100 and torn_tails > 50


@pytest.mark.parametrize("point", range(TXN_CRASH_POINTS))
def test_a_crash_after_n_bytes_loses_no_committed_transaction(tmp_path, point):
    data = str(tmp_path / "data")
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_CRASH_AFTER,
                      nbytes=(point + 1) * TXN_BYTES_MAX // TXN_CRASH_POINTS)
    workload = TxnWorkload(data, random.Random(point))
    workload.run()
    _ffi.io_fault_clear()
    assert_durable_outcomes(workload, read_back(workload))
