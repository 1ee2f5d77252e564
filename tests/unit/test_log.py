"""logstore.Log: offsets, reads, rolling, indexes, retention, truncation, durability.

Method: real files in tmp_path, real fsyncs; time comes from a fake clock where a rule depends on
it. Each test states the Kafka rule it checks. The autouse checker validates every directory
afterwards.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading

import pytest

from logstore import _ffi, record_batch
from logstore.errors import (CorruptRecord, LogClosed, LogDirLocked, OffsetOutOfRange,
                             RecordBatchTooLarge, RecordTooLarge)
from logstore.log import Log


class Clock:
    def __init__(self, now: int = 1_700_000_000_000):
        self.now = now

    def __call__(self) -> int:
        return self.now


def values(n: int, size: int = 10, tag: str = "v") -> list[bytes]:
    return [f"{tag}{i}".encode().ljust(size, b".") for i in range(n)]


def all_records(log: Log, start: int | None = None):
    return [r for batch in log.batches(start) if not batch.is_control for r in batch.records()]


def test_append_assigns_consecutive_offsets_and_reads_back(tmp_path):
    with Log.open(tmp_path / "t-0") as log:
        first = log.append(values(3))
        second = log.append(values(2, tag="w"), keys=[b"a", None])
        assert (first.first_offset, first.last_offset) == (0, 2)
        assert (second.first_offset, second.last_offset) == (3, 4)
        assert log.log_end_offset == log.high_watermark == 5
        got = all_records(log)
        assert [r.offset for r in got] == [0, 1, 2, 3, 4]
        assert [r.value for r in got][3:] == values(2, tag="w")
        assert [r.key for r in got][3:] == [b"a", None]


def test_read_from_the_middle_of_a_batch_returns_the_whole_batch(tmp_path):
    with Log.open(tmp_path / "t-0") as log:
        log.append(values(5))
        log.append(values(5))
        result = log.read(7)
        batches = list(result.batches())
        assert batches[0].base_offset == 5 and batches[0].last_offset == 9
        assert result.next_offset == 10


def test_read_respects_max_bytes_in_whole_batches_but_returns_at_least_one(tmp_path):
    with Log.open(tmp_path / "t-0") as log:
        for _ in range(4):
            log.append(values(10, size=100))
        one = record_batch.RecordBatch(log.read(0, 1).records).size
        result = log.read(0, max_bytes=2 * one + 1)
        assert len(result.records) == 2 * one
        tiny = log.read(0, max_bytes=1)       # KIP-74: one batch even if bigger
        assert len(tiny.records) == one and tiny.next_offset == 10


def test_read_outside_the_log_raises_and_at_the_end_is_empty(tmp_path):
    with Log.open(tmp_path / "t-0") as log:
        log.append(values(3))
        assert len(log.read(3).records) == 0
        with pytest.raises(OffsetOutOfRange):
            log.read(4)
        with pytest.raises(OffsetOutOfRange):
            log.read(-1)


def test_read_is_a_zero_copy_view_of_the_segment(tmp_path):
    with Log.open(tmp_path / "t-0") as log:
        log.append(values(3))
        view = log.read(0).records
        assert isinstance(view, memoryview) and view.readonly
        assert view.obj is not None and not isinstance(view.obj, (bytes, bytearray))


def test_segments_roll_on_segment_bytes_with_kafka_file_names(tmp_path):
    path = tmp_path / "t-0"
    with Log.open(path, {"segment.bytes": 1000}) as log:
        for _ in range(10):
            log.append(values(5, size=50))
        bases = [s.base_offset for s in log.segments]
        assert len(bases) > 3
        assert all(s.size <= 1000 for s in log.segments)
        assert [r.offset for r in all_records(log)] == list(range(50))
    names = sorted(n for n in os.listdir(path) if n.endswith(".log"))
    assert names == [f"{b:020d}.log" for b in bases]


def test_segments_roll_on_segment_ms_measured_from_the_first_batch_timestamp(tmp_path):
    clock = Clock()
    with Log.open(tmp_path / "t-0", {"segment.ms": 1000}, time_ms=clock) as log:
        log.append(values(1), timestamps=[clock.now])
        log.append(values(1), timestamps=[clock.now + 1000])   # waited == segment.ms: no roll
        assert len(log.segments) == 1
        log.append(values(1), timestamps=[clock.now + 1001])
        assert len(log.segments) == 2 and log.active_segment.base_offset == 2


def test_segments_roll_when_the_offset_index_is_full(tmp_path):
    # segment.index.bytes 32 -> 4 offset-index entries; index.interval.bytes 0 -> one per batch
    # after the first; the time index (2 entries, one kept free) fills first.
    config = {"segment.index.bytes": 32, "index.interval.bytes": 0}
    with Log.open(tmp_path / "t-0", config) as log:
        for i in range(12):
            log.append(values(1), timestamps=[1000 + i])
        assert len(log.segments) > 2
        for segment in log.segments[:-1]:
            assert segment.offset_index.entry_count <= 4
            assert segment.time_index.entry_count <= 2
        assert [r.offset for r in all_records(log)] == list(range(12))


def test_segments_roll_when_the_relative_offset_would_overflow(tmp_path):
    with Log.open(tmp_path / "t-0") as log:
        log.append_batch(record_batch.build_batch(values(1)), assign_offsets=False)
        far = record_batch.build_batch(values(1), base_offset=2**31 + 5)
        log.append_batch(far, assign_offsets=False)
        assert [s.base_offset for s in log.segments] == [0, 2**31 + 5]
        assert log.log_end_offset == 2**31 + 6


def kafka_index_model(sizes: list[int], last_offsets: list[int], interval: int):
    """Kafka's LogSegment.append rule: entry (lastOffset, position) when more than `interval`
    bytes were appended since the last entry, checked before counting the current batch."""
    entries, since, position = [], 0, 0
    for size, last in zip(sizes, last_offsets):
        if since > interval:
            entries.append((last, position))
            since = 0
        since += size
        position += size
    return entries


def test_offset_index_entries_follow_kafkas_interval_rule(tmp_path):
    path = tmp_path / "t-0"
    sizes, lasts = [], []
    with Log.open(path, {"index.interval.bytes": 300}) as log:
        for i in range(40):
            info = log.append(values(1 + i % 4, size=37))
            sizes.append(info.size)
            lasts.append(info.last_offset)
        segment = log.active_segment
        got = [segment.offset_index.entry(n) for n in range(segment.offset_index.entry_count)]
    assert got == kafka_index_model(sizes, lasts, 300)
    raw = (path / f"{0:020d}.index").read_bytes()
    assert [struct.unpack_from(">ii", raw, n * 8) for n in range(len(raw) // 8)] == got


def test_active_index_is_preallocated_and_trimmed_on_close(tmp_path):
    path = tmp_path / "t-0"
    log = Log.open(path, {"segment.index.bytes": 4096, "index.interval.bytes": 0})
    for _ in range(5):
        log.append(values(2))
    index_file = path / f"{0:020d}.index"
    time_file = path / f"{0:020d}.timeindex"
    assert index_file.stat().st_size == 4096
    assert time_file.stat().st_size == 4096 - 4096 % 12
    entries = log.active_segment.offset_index.entry_count
    log.close()
    assert index_file.stat().st_size == entries * 8
    assert time_file.stat().st_size % 12 == 0 and time_file.stat().st_size > 0


def test_clean_reopen_keeps_offsets_without_recovery(tmp_path):
    path = tmp_path / "t-0"
    with Log.open(path, {"segment.bytes": 2000}) as log:
        for _ in range(20):
            log.append(values(3, size=40))
        before = [(r.offset, r.value) for r in all_records(log)]
    with Log.open(path, {"segment.bytes": 2000}) as log:
        assert log.recovery_report.clean_shutdown
        assert log.recovery_report.segments_recovered == []
        assert log.log_end_offset == 60
        assert [(r.offset, r.value) for r in all_records(log)] == before
        log.append(values(1))
        assert log.log_end_offset == 61


def test_offsets_for_times_finds_the_first_record_at_or_after_the_timestamp(tmp_path):
    with Log.open(tmp_path / "t-0", {"segment.bytes": 400, "index.interval.bytes": 50}) as log:
        for i in range(30):
            log.append([b"x" * 30, b"y" * 30], timestamps=[1000 + 10 * i, 1005 + 10 * i])
        assert log.offset_for_timestamp(1000) == (0, 1000)
        assert log.offset_for_timestamp(1001) == (1, 1005)
        assert log.offset_for_timestamp(1006) == (2, 1010)
        assert log.offset_for_timestamp(1295) == (59, 1295)
        assert log.offset_for_timestamp(1296) is None
        assert log.offset_for_timestamp(-2) == (0, -1)
        assert log.offset_for_timestamp(-1) == (60, -1)
        assert log.offset_for_timestamp(-3) == (59, 1295)
        assert log.offsets_for_times({"a": 1100}) == {"a": (20, 1100)}


def test_truncate_to_removes_whole_batches_and_appends_continue(tmp_path):
    path = tmp_path / "t-0"
    with Log.open(path, {"segment.bytes": 500}) as log:
        for _ in range(10):
            log.append(values(4, size=30))
        assert len(log.segments) > 2
        assert log.truncate_to(22) == 20          # batch 20..23 straddles 22: removed whole
        assert log.log_end_offset == 20
        assert [r.offset for r in all_records(log)] == list(range(20))
        log.append(values(1))
        assert log.log_end_offset == 21
    with Log.open(path, {"segment.bytes": 500}) as log:
        assert log.log_end_offset == 21


def test_truncate_keeps_views_already_handed_out_valid(tmp_path):
    with Log.open(tmp_path / "t-0") as log:
        log.append(values(3))
        log.append(values(3))
        view = log.read(3).records
        expected = bytes(view)
        log.truncate_to(3)
        assert bytes(view) == expected            # no SIGBUS: the old inode is still mapped
        assert log.log_end_offset == 3


def test_delete_records_before_moves_the_log_start_and_survives_reopen(tmp_path):
    path = tmp_path / "t-0"
    with Log.open(path, {"segment.bytes": 300}) as log:
        for _ in range(10):
            log.append(values(3, size=30))
        segments_before = len(log.segments)
        assert log.delete_records_before(13) == 13
        assert len(log.segments) < segments_before
        assert log.log_start_offset == 13
        with pytest.raises(OffsetOutOfRange):
            log.read(12)
        assert log.read(13).next_offset > 13
        with pytest.raises(OffsetOutOfRange):
            log.delete_records_before(31)
    with Log.open(path, {"segment.bytes": 300}) as log:
        assert log.log_start_offset == 13


def test_retention_ms_deletes_old_segments_and_rolls_if_all_are_old(tmp_path):
    clock = Clock()
    config = {"segment.bytes": 300, "retention.ms": 10_000}
    with Log.open(tmp_path / "t-0", config, time_ms=clock) as log:
        for i in range(10):
            log.append(values(3, size=30), timestamps=[clock.now + i] * 3)
        count = len(log.segments)
        assert log.apply_retention() == 0
        clock.now += 10_005                        # the first five batches are now too old
        deleted = log.apply_retention()
        assert 0 < deleted < count
        assert log.log_start_offset == log.segments[0].base_offset > 0
        clock.now += 1_000_000
        log.apply_retention()                      # everything old: an empty segment remains
        assert log.log_start_offset == log.log_end_offset == 30
        assert len(log.segments) == 1 and log.segments[0].size == 0
        log.append(values(1))
        assert log.log_end_offset == 31


def test_retention_bytes_keeps_the_newest_segments_within_the_limit(tmp_path):
    with Log.open(tmp_path / "t-0", {"segment.bytes": 300, "retention.bytes": 700}) as log:
        for _ in range(20):
            log.append(values(3, size=30))
        log.apply_retention()
        assert log.size_in_bytes - log.active_segment.size <= 700
        assert log.size_in_bytes > 700 - 300
        assert [r.offset for r in all_records(log)][-1] == 59


def test_flush_messages_one_syncs_every_append(tmp_path):
    with Log.open(tmp_path / "t-0", {"flush.messages": 1}) as log:
        for i in range(5):
            info = log.append(values(1))
            assert log.recovery_point == info.last_offset + 1
    with Log.open(tmp_path / "t-1", {"flush.messages": 3}) as log:
        log.append(values(1))
        log.append(values(1))
        assert log.recovery_point == 0
        log.append(values(1))
        assert log.recovery_point == 3


def test_flush_ms_flushes_data_older_than_the_interval(tmp_path):
    clock = Clock()
    with Log.open(tmp_path / "t-0", {"flush.ms": 500}, time_ms=clock) as log:
        log._scheduler.shutdown()                 # drive the check by hand with the fake clock
        log.append(values(2))
        assert not log.maybe_flush_on_time()
        clock.now += 500
        assert log.maybe_flush_on_time()
        assert log.recovery_point == 2


def test_durable_appends_from_many_threads_share_fsyncs(tmp_path, monkeypatch):
    from logstore import segment as segment_module
    syncs = []
    real = segment_module._ffi.fdatasync

    def counting(fd, what="fdatasync"):
        syncs.append(fd)
        real(fd, what)
    monkeypatch.setattr(segment_module._ffi, "fdatasync", counting)
    threads, per_thread = 8, 40
    with Log.open(tmp_path / "t-0") as log:
        def worker():
            for _ in range(per_thread):
                info = log.append(values(1), durable=True)
                assert log.recovery_point > info.last_offset
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert log.log_end_offset == threads * per_thread
    assert 0 < len(syncs) < threads * per_thread     # group commit shared syncs


def test_log_append_time_replaces_max_timestamp_and_keeps_the_crc_valid(tmp_path):
    clock = Clock(5_000_000)
    with Log.open(tmp_path / "t-0", {"message.timestamp.type": "LogAppendTime"},
                  time_ms=clock) as log:
        info = log.append(values(2), timestamps=[1, 2])
        assert info.log_append_time_ms == 5_000_000
        batch = next(log.batches())
        assert batch.is_valid() and batch.timestamp_type == 1
        assert [r.timestamp for r in batch.records()] == [5_000_000, 5_000_000]


def test_bad_batches_are_refused_with_kafka_errors_and_nothing_is_written(tmp_path):
    with Log.open(tmp_path / "t-0", {"max.message.bytes": 2000, "segment.bytes": 1500}) as log:
        log.append(values(1))
        with pytest.raises(RecordTooLarge):
            log.append_batch(record_batch.build_batch([b"x" * 3000]))
        with pytest.raises(RecordBatchTooLarge):
            log.append_batch(record_batch.build_batch([b"x" * 1600]))
        bad = record_batch.build_batch(values(2))
        bad[-1] ^= 0xFF
        with pytest.raises(CorruptRecord):
            log.append_batch(bad)
        assert log.log_end_offset == 1
        assert [r.offset for r in all_records(log)] == [0]
    with pytest.raises(LogClosed):
        log.append(values(1))


def test_a_second_open_in_the_same_process_is_refused(tmp_path):
    with Log.open(tmp_path / "t-0"):
        with pytest.raises(LogDirLocked) as info:
            Log.open(tmp_path / "t-0")
        assert f"pid {os.getpid()}" in str(info.value)


def test_a_second_process_gets_an_error_naming_the_holder(tmp_path):
    with Log.open(tmp_path / "t-0"):
        code = ("import sys\nfrom logstore.log import Log\nfrom logstore.errors import "
                "LogDirLocked\ntry:\n    Log.open(sys.argv[1])\nexcept LogDirLocked as e:\n"
                "    print(e.holder)\n    sys.exit(3)\n")
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t-0")],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 3, proc.stderr
        assert f"pid {os.getpid()}" in proc.stdout


def test_enospc_on_append_leaves_nothing_visible_and_the_log_keeps_working(tmp_path):
    import errno
    from logstore.errors import LogDirFull
    with Log.open(tmp_path / "t-0") as log:
        log.append(values(3))
        _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_SHORT_WRITE, errno.ENOSPC, count=1,
                          nbytes=20)
        try:
            with pytest.raises(LogDirFull):
                log.append(values(3))
        finally:
            _ffi.io_fault_clear()
        assert log.log_end_offset == 3
        assert log.active_segment.size == os.path.getsize(log.active_segment.log_path)
        log.append(values(2))
        assert [r.offset for r in all_records(log)] == [0, 1, 2, 3, 4]


def test_a_failed_fsync_takes_the_log_offline_until_reopened(tmp_path):
    import errno
    from logstore.errors import LogOffline, KafkaStorageError
    path = tmp_path / "t-0"
    log = Log.open(path)
    log.append(values(3), durable=True)
    _ffi.io_fault_set(_ffi.IO_OP_SYNC, _ffi.FAULT_ERROR, errno.EIO, count=1)
    try:
        with pytest.raises(KafkaStorageError):
            log.append(values(1), durable=True)
    finally:
        _ffi.io_fault_clear()
    with pytest.raises(LogOffline):
        log.append(values(1))
    log.close()                                    # not clean: no marker written
    with Log.open(path) as log:
        assert not log.recovery_report.clean_shutdown
        assert log.log_end_offset == 4             # the write reached the page cache
        log.append(values(1))
