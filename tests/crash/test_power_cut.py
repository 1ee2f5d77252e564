"""A power cut loses what was not fsynced: the model of the C power-cut journal.

Goal: the journal (csrc/io_journal.c, harness tests/crash/powercut.py) leaves a tree the way
the harshest crash the POSIX contract allows would: every file loses what was written after
its last fsync, and (strict mode) every directory loses the names created, renamed or removed
after its last fsync. Method: plain files written through the io table, cut, read back.
"""

from __future__ import annotations

import os

import pytest
from powercut import power_cut, start_journal

from logstore import _ffi, fsutil
from logstore.errors import KafkaStorageError


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
