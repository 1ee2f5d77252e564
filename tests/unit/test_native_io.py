"""File I/O through the C table (csrc/io.c) and its fault injection, through logstore._ffi.

Goal: the ls_io_* calls do what the system calls do on real files (full transfers, short reads at
EOF, errno kept), map ENOSPC to LogDirFull and other failures to KafkaStorageError, and every
fault kind behaves exactly as logstore.h describes: ERROR (any errno, after_calls, count),
SHORT_WRITE (a torn write), CRASH_AFTER (a write cut at exactly N bytes, then a dead process for
writes and syncs), op masks, the rename path filter, the fired counter, and clearing.
Method: real files under tmp_path, read back with os.pread; an autouse fixture clears faults
before and after every test.
"""

from __future__ import annotations

import errno
import os
import threading

import pytest

from logstore import _ffi, errors


@pytest.fixture(autouse=True)
def clear_faults(request):
    _ffi.io_fault_clear()
    request.addfinalizer(_ffi.io_fault_clear)


@pytest.fixture
def fd(tmp_path):
    descriptor = os.open(tmp_path / "scratch.bin", os.O_RDWR | os.O_CREAT, 0o644)
    yield descriptor
    os.close(descriptor)


def contents(fd: int) -> bytes:
    return os.pread(fd, 1 << 20, 0)


# ------------------------------------------------------------------------------------------------
# Normal behaviour


def test_pwrite_pread_round_trip(fd):
    _ffi.pwrite_all(fd, b"hello world", 0)
    _ffi.pwrite_all(fd, memoryview(b"WORLD")[:], 6)
    _ffi.pwrite_all(fd, bytearray(b"!"), 11)
    assert contents(fd) == b"hello WORLD!"
    assert _ffi.pread_all(fd, 5, 6) == b"WORLD"
    assert _ffi.pread_all(fd, 100, 6) == b"WORLD!"   # short at end of file
    assert _ffi.pread_all(fd, 10, 50) == b""         # past the end
    assert _ffi.pread_all(fd, 0, 0) == b""


def test_large_write_is_complete(fd):
    data = os.urandom(3 << 20)
    _ffi.pwrite_all(fd, data, 4096)
    assert os.fstat(fd).st_size == 4096 + len(data)
    assert _ffi.pread_all(fd, len(data), 4096) == data


def test_sync_truncate_rename(tmp_path, fd):
    _ffi.pwrite_all(fd, b"x" * 100, 0)
    _ffi.fsync(fd)
    _ffi.fdatasync(fd)
    _ffi.ftruncate(fd, 10)
    assert os.fstat(fd).st_size == 10
    _ffi.ftruncate(fd, 4096)
    assert contents(fd) == b"x" * 10 + bytes(4086)
    (tmp_path / "a").write_bytes(b"A")
    _ffi.rename(str(tmp_path / "a"), str(tmp_path / "b"))
    assert not (tmp_path / "a").exists() and (tmp_path / "b").read_bytes() == b"A"


def test_system_errors_keep_their_errno(tmp_path):
    readonly = os.open(tmp_path / "ro", os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        with pytest.raises(errors.KafkaStorageError) as info:
            _ffi.pwrite_all(readonly, b"x", 0)
        assert info.value.errno == errno.EBADF == _ffi.lib.ls_io_errno()
    finally:
        os.close(readonly)
    with pytest.raises(errors.KafkaStorageError) as info:
        _ffi.rename(str(tmp_path / "missing"), str(tmp_path / "other"))
    assert info.value.errno == errno.ENOENT
    assert not isinstance(info.value, errors.LogDirFull)


def test_bad_arguments_are_caller_errors(fd):
    for call in (lambda: _ffi.pwrite_all(-1, b"x", 0), lambda: _ffi.pwrite_all(fd, b"x", -1),
                 lambda: _ffi.ftruncate(fd, -1), lambda: _ffi.fsync(-1)):
        with pytest.raises(errors.LogstoreError, match="invalid argument"):
            call()


# ------------------------------------------------------------------------------------------------
# ERROR faults


def test_error_fault_fails_write_and_transfers_nothing(fd):
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_ERROR, errno.EIO, count=1)
    with pytest.raises(errors.KafkaStorageError) as info:
        _ffi.pwrite_all(fd, b"data", 0)
    assert info.value.errno == errno.EIO and not isinstance(info.value, errors.LogDirFull)
    assert contents(fd) == b""
    assert _ffi.io_fault_fired() == 1
    _ffi.pwrite_all(fd, b"data", 0)     # count exhausted: writes work again
    assert contents(fd) == b"data" and _ffi.io_fault_fired() == 1


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EDQUOT])
def test_error_fault_out_of_space_is_log_dir_full(fd, err):
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_ERROR, err)
    with pytest.raises(errors.LogDirFull) as info:
        _ffi.pwrite_all(fd, b"data", 0)
    assert info.value.errno == err


def test_error_fault_after_calls_and_forever(fd):
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_ERROR, errno.EIO, after_calls=2, count=-1)
    _ffi.pwrite_all(fd, b"a", 0)
    _ffi.pwrite_all(fd, b"b", 1)
    for i in range(5):
        with pytest.raises(errors.KafkaStorageError):
            _ffi.pwrite_all(fd, b"c", 2)
    assert contents(fd) == b"ab" and _ffi.io_fault_fired() == 5


def test_error_fault_default_errno_is_eio(fd):
    _ffi.io_fault_set(_ffi.IO_OP_SYNC, _ffi.FAULT_ERROR)
    with pytest.raises(errors.KafkaStorageError) as info:
        _ffi.fsync(fd)
    assert info.value.errno == errno.EIO


def test_op_mask_selects_the_faulted_calls(tmp_path, fd):
    _ffi.io_fault_set(_ffi.IO_OP_SYNC, _ffi.FAULT_ERROR, errno.EIO)
    _ffi.pwrite_all(fd, b"unaffected", 0)
    assert _ffi.pread_all(fd, 10, 0) == b"unaffected"
    for sync in (_ffi.fsync, _ffi.fdatasync):
        with pytest.raises(errors.KafkaStorageError):
            sync(fd)
    _ffi.io_fault_set(_ffi.IO_OP_READ | _ffi.IO_OP_TRUNCATE, _ffi.FAULT_ERROR, errno.EIO)
    with pytest.raises(errors.KafkaStorageError):
        _ffi.pread_all(fd, 10, 0)
    with pytest.raises(errors.KafkaStorageError):
        _ffi.ftruncate(fd, 0)
    assert os.fstat(fd).st_size == 10
    _ffi.fsync(fd)
    assert _ffi.io_fault_fired() == 2   # counter restarts at each set


def test_rename_fault_with_path_filter(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(name.encode())
    _ffi.io_fault_set(_ffi.IO_OP_RENAME, _ffi.FAULT_ERROR, errno.EIO,
                      path_filter=".snapshot")
    _ffi.rename(str(tmp_path / "a"), str(tmp_path / "a.index"))     # not matched
    with pytest.raises(errors.KafkaStorageError):
        _ffi.rename(str(tmp_path / "b"), str(tmp_path / "00000000000000000042.snapshot"))
    assert (tmp_path / "a.index").exists() and (tmp_path / "b").exists()
    assert _ffi.io_fault_fired() == 1
    _ffi.io_fault_clear()
    _ffi.io_fault_set(_ffi.IO_OP_RENAME, _ffi.FAULT_ERROR, errno.EIO)  # the filter was reset
    with pytest.raises(errors.KafkaStorageError):
        _ffi.rename(str(tmp_path / "a.index"), str(tmp_path / "c"))


# ------------------------------------------------------------------------------------------------
# SHORT_WRITE and CRASH_AFTER


def test_short_write_transfers_exactly_n_bytes_then_fails(fd):
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_SHORT_WRITE, errno.ENOSPC, count=1, nbytes=5)
    with pytest.raises(errors.LogDirFull):
        _ffi.pwrite_all(fd, b"0123456789", 100)
    assert os.fstat(fd).st_size == 105 and _ffi.pread_all(fd, 10, 100) == b"01234"
    _ffi.pwrite_all(fd, b"0123456789", 100)
    assert _ffi.pread_all(fd, 10, 100) == b"0123456789"


def test_crash_after_cuts_the_crossing_write_exactly(fd):
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_CRASH_AFTER, nbytes=25)
    _ffi.pwrite_all(fd, b"a" * 10, 0)          # 15 bytes of budget left
    _ffi.fsync(fd)                              # not dead yet
    with pytest.raises(errors.KafkaStorageError, match="injected") as info:
        _ffi.pwrite_all(fd, b"b" * 30, 10)
    assert info.value.errno is None
    assert contents(fd) == b"a" * 10 + b"b" * 15
    assert _ffi.io_fault_fired() == 1


def test_crash_after_everything_but_reads_fails(tmp_path, fd):
    (tmp_path / "x").write_bytes(b"x")
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_CRASH_AFTER, nbytes=4)
    _ffi.pwrite_all(fd, b"1234", 0)            # exactly the budget: still alive
    with pytest.raises(errors.KafkaStorageError, match="injected"):
        _ffi.pwrite_all(fd, b"5", 4)            # cut at 0 bytes
    later = [lambda: _ffi.pwrite_all(fd, b"z", 0), lambda: _ffi.fsync(fd),
             lambda: _ffi.fdatasync(fd), lambda: _ffi.ftruncate(fd, 0),
             lambda: _ffi.rename(str(tmp_path / "x"), str(tmp_path / "y"))]
    for call in later:
        with pytest.raises(errors.KafkaStorageError, match="injected"):
            call()
    assert _ffi.pread_all(fd, 100, 0) == b"1234"
    assert (tmp_path / "x").exists() and os.fstat(fd).st_size == 4
    assert _ffi.io_fault_fired() == 1 + len(later)
    _ffi.io_fault_clear()
    assert _ffi.io_fault_fired() == 1 + len(later)   # survives clear, for the test to read
    _ffi.pwrite_all(fd, b"5", 4)
    _ffi.fsync(fd)
    assert contents(fd) == b"12345"


def test_crash_after_arms_after_calls(fd):
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_CRASH_AFTER, after_calls=2, nbytes=3)
    _ffi.pwrite_all(fd, b"aaaa", 0)
    _ffi.pwrite_all(fd, b"bbbb", 4)
    with pytest.raises(errors.KafkaStorageError, match="injected"):
        _ffi.pwrite_all(fd, b"cccc", 8)
    assert contents(fd) == b"aaaabbbbccc"


def test_fault_set_rejects_bad_descriptions():
    bad = [
        dict(op_mask=0, kind=_ffi.FAULT_ERROR),
        dict(op_mask=64, kind=_ffi.FAULT_ERROR),
        dict(op_mask=_ffi.IO_OP_WRITE, kind=9),
        dict(op_mask=_ffi.IO_OP_SYNC, kind=_ffi.FAULT_SHORT_WRITE),
        dict(op_mask=_ffi.IO_OP_SYNC, kind=_ffi.FAULT_CRASH_AFTER),
        dict(op_mask=_ffi.IO_OP_WRITE, kind=_ffi.FAULT_ERROR, count=-2),
        dict(op_mask=_ffi.IO_OP_WRITE, kind=_ffi.FAULT_ERROR, after_calls=-1),
        dict(op_mask=_ffi.IO_OP_WRITE, kind=_ffi.FAULT_CRASH_AFTER, nbytes=-1),
    ]
    for description in bad:
        with pytest.raises(errors.LogstoreError, match="invalid argument"):
            _ffi.io_fault_set(**description)
    with pytest.raises(errors.LogstoreError, match="invalid argument"):
        _ffi.io_fault_set(_ffi.IO_OP_RENAME, _ffi.FAULT_ERROR, path_filter="x" * 300)


def test_fault_count_is_exact_under_concurrent_writers(tmp_path):
    """Eight threads (cffi releases the GIL) race for 50 fault firings: exactly 50 fail."""
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_ERROR, errno.EIO, count=50)
    failures = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        descriptor = os.open(tmp_path / f"w{n}", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            for i in range(100):
                try:
                    _ffi.pwrite_all(descriptor, b"x" * 64, i * 64)
                except errors.KafkaStorageError as exc:
                    assert exc.errno == errno.EIO
                    with lock:
                        failures.append(n)
        finally:
            os.close(descriptor)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(failures) == 50 == _ffi.io_fault_fired()
    written = sum(os.path.getsize(tmp_path / f"w{n}") > 0 for n in range(8))
    assert written >= 1
