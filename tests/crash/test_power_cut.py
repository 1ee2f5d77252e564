"""A power cut loses what was not fsynced, and nothing that was reported durable.

Goal: prove the store's durability claims against the harshest crash the POSIX contract
allows: every file loses what was written after its last fsync, and (strict mode) every
directory loses the names created, renamed or removed after its last fsync.
Method: the C power-cut journal (csrc/io_journal.c, harness tests/crash/powercut.py) records
every write, truncate, sync and rename of the io table. First the model itself is checked on
plain files. Then workloads run on a Log and on the embedded Producer/Consumer with
transactions; a CRASH_AFTER fault freezes the disk at a random byte (the power fails in the
middle of whatever was being written), the store is abandoned, the journal rewinds the tree,
and the store is reopened. Checks: every append that returned with durable=True, every
record flushed, every transaction whose commit_transaction() returned and its consumer
offsets are there; nothing aborted is visible to read_committed; no record appears twice;
the history checker finds no anomaly; the autouse checker finds the reopened (and cleanly
closed) directories consistent.
"""

from __future__ import annotations

import os
import random

import pytest
from crash_workloads import TXN_BYTES_MAX, TxnWorkload, assert_durable_outcomes, read_back
from powercut import power_cut, start_journal

from logstore import _ffi, fsutil
from logstore.errors import KafkaStorageError
from logstore.log import Log
from logstore.store import LogStore

LOG_CONFIG = {"segment.bytes": 2500, "index.interval.bytes": 300}
LOG_STEPS = 80
LOG_SEEDS = 12
TXN_SEEDS = 12
NO_FREEZE = 1 << 40
MODES = [pytest.param(True, id="strict"), pytest.param(False, id="names-kept")]


def freeze_disk_after(nbytes: int) -> None:
    """The power fails once nbytes more bytes were written: that write is cut there and every
    later write, sync, truncate and rename fails (the disk is frozen)."""
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_CRASH_AFTER, nbytes=nbytes)


def thaw_and_cut(root, strict: bool):
    _ffi.io_fault_clear()
    return power_cut(str(root), dir_entries=strict)


# ------------------------------------------------------------------------------------------------
# The model


def test_a_cut_puts_file_contents_back_to_their_last_fsync(tmp_path):
    start_journal(str(tmp_path))
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    _ffi.pwrite_all(fd, b"durable!", 0)
    _ffi.fsync(fd)
    fsutil.fsync_dir(str(tmp_path))
    _ffi.pwrite_all(fd, b"appended", 8)          # after the sync: lost
    _ffi.pwrite_all(fd, b"D", 0)                 # an overwrite of synced bytes: undone
    _ffi.ftruncate(fd, 3)                        # a cut of synced bytes: undone
    os.close(fd)
    other = os.open(tmp_path / "g", os.O_RDWR | os.O_CREAT, 0o644)
    _ffi.pwrite_all(other, b"never synced", 0)
    os.close(other)
    report = power_cut(str(tmp_path), dir_entries=False)
    assert (tmp_path / "f").read_bytes() == b"durable!"
    assert (tmp_path / "g").read_bytes() == b""          # its name stays, its data does not
    assert report.files_rewound == 2 and report.entries_changed == 0


def test_a_sync_makes_what_was_written_before_it_durable(tmp_path):
    start_journal(str(tmp_path))
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    _ffi.pwrite_all(fd, b"one", 0)
    _ffi.fdatasync(fd)
    _ffi.pwrite_all(fd, b"ONE", 0)
    _ffi.pwrite_all(fd, b"two", 3)
    _ffi.fsync(fd)
    _ffi.pwrite_all(fd, b"three", 6)
    os.close(fd)
    fsutil.fsync_dir(str(tmp_path))
    power_cut(str(tmp_path))
    assert (tmp_path / "f").read_bytes() == b"ONEtwo"


def test_strict_mode_undoes_names_changed_since_the_directory_fsync(tmp_path):
    (tmp_path / "removed").write_bytes(b"old file")
    fsutil.atomic_write(str(tmp_path / "replaced"), b"v1")
    (tmp_path / "kept").mkdir()
    start_journal(str(tmp_path))
    fsutil.atomic_write(str(tmp_path / "synced"), b"complete")    # dir fsynced: stays
    created = os.open(tmp_path / "created", os.O_RDWR | os.O_CREAT, 0o644)
    _ffi.pwrite_all(created, b"data", 0)
    _ffi.fsync(created)                               # the file is synced, its name is not
    os.close(created)
    tmp = tmp_path / "replaced.tmp"
    tmp.write_bytes(b"v2")
    _ffi.rename(str(tmp), str(tmp_path / "replaced"))
    _ffi.rename(str(tmp_path / "synced"), str(tmp_path / "moved"))
    os.unlink(tmp_path / "removed")
    (tmp_path / "kept" / "new-dir").mkdir()
    power_cut(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["kept", "removed", "replaced", "synced"]
    assert (tmp_path / "synced").read_bytes() == b"complete"
    assert (tmp_path / "replaced").read_bytes() == b"v1"
    assert (tmp_path / "removed").read_bytes() == b"old file"
    assert os.listdir(tmp_path / "kept") == []


def test_an_atomic_write_interrupted_before_its_directory_fsync_leaves_the_old_content(
        tmp_path):
    path = str(tmp_path / "checkpoint")
    fsutil.atomic_write(path, b"old")
    start_journal(str(tmp_path))
    # The .tmp file's fsync passes, the directory's fails: the power goes before it is done.
    _ffi.io_fault_set(_ffi.IO_OP_SYNC, _ffi.FAULT_ERROR, after_calls=1)
    with pytest.raises(KafkaStorageError):
        fsutil.atomic_write(path, b"new")
    assert (tmp_path / "checkpoint").read_bytes() == b"new"          # visible, not durable
    thaw_and_cut(tmp_path, strict=True)
    assert os.listdir(tmp_path) == ["checkpoint"]
    assert (tmp_path / "checkpoint").read_bytes() == b"old"


# ------------------------------------------------------------------------------------------------
# A Log


def run_log_workload(path, rng) -> tuple[list[bytes], int]:
    """Appends (some durable, some flushed later, rolls on the way) until done or the disk
    freezes. Returns (value of each acknowledged offset, offsets below this are durable)."""
    values: list[bytes] = []
    durable_end = 0
    log = Log.open(path, LOG_CONFIG)
    try:
        for step in range(LOG_STEPS):
            value = f"{step}:".encode() + os.urandom(rng.randint(1, 120)).hex().encode()
            durable = rng.random() < 0.3
            info = log.append([value], durable=durable)
            assert info.first_offset == len(values)
            values.append(value)
            if durable:
                durable_end = info.last_offset + 1
            elif rng.random() < 0.1:
                log.flush()
                durable_end = len(values)
    except KafkaStorageError:
        pass                                      # the disk froze: the power is going
    finally:
        log.abandon()
    return values, durable_end


@pytest.mark.parametrize("strict", MODES)
@pytest.mark.parametrize("seed", range(LOG_SEEDS))
def test_a_log_keeps_every_durable_append_across_a_power_cut(tmp_path, seed, strict):
    rng = random.Random(seed)
    path = str(tmp_path / "data" / "t-0")
    start_journal(str(tmp_path))
    freeze_disk_after(rng.randint(0, 12000))
    values, durable_end = run_log_workload(path, rng)
    thaw_and_cut(tmp_path, strict)
    with Log.open(path, LOG_CONFIG) as log:
        got = [record.value for batch in log.batches() for record in batch.records()]
        assert not log.recovery_report.clean_shutdown
    assert len(got) >= durable_end, f"lost durable appends: {len(got)} < {durable_end}"
    assert got == values[: len(got)]              # a prefix of what was appended, no garbage


def test_a_new_partition_directory_and_its_first_segment_survive_a_power_cut(tmp_path):
    """Regression: a Log created its directory and first segment without syncing the parent
    or the directory, so a power cut could take fsynced data away with the names."""
    start_journal(str(tmp_path))
    path = str(tmp_path / "data" / "t-0")
    with LogStore(str(tmp_path / "store")) as store:
        store.create_topic("t")
        store.log("t", 0).append([b"in a store"], durable=True)
        store.abandon()
    log = Log.open(path, LOG_CONFIG)
    log.append([b"standalone"], durable=True)
    log.abandon()
    power_cut(str(tmp_path))
    with Log.open(path, LOG_CONFIG) as log:
        assert [r.value for b in log.batches() for r in b.records()] == [b"standalone"]
    with LogStore(str(tmp_path / "store")) as store:
        log = store.log("t", 0)
        assert [r.value for b in log.batches() for r in b.records()] == [b"in a store"]


# ------------------------------------------------------------------------------------------------
# Transactions through the embedded clients


@pytest.mark.parametrize("strict", MODES)
@pytest.mark.parametrize("seed", range(TXN_SEEDS))
def test_every_committed_transaction_survives_a_power_cut(tmp_path, seed, strict):
    rng = random.Random(seed)
    data = str(tmp_path / "data")
    start_journal(str(tmp_path))
    freeze_disk_after(rng.randint(0, TXN_BYTES_MAX) if seed else NO_FREEZE)
    workload = TxnWorkload(data, rng)
    workload.run()
    thaw_and_cut(tmp_path, strict)
    committed_offset = read_back(workload)
    assert_durable_outcomes(workload, committed_offset)
