"""Recovery after an unclean shutdown keeps exactly the valid prefix.

Method: write a log, close it cleanly, keep a pristine copy of its files, then damage a copy the
way a crash or a bad disk would (cut the last batch at every byte, flip bits, append garbage,
delete or scribble over index files), remove the clean-shutdown marker, reopen, and compare with
what the pristine log held. Finally a real child process is killed with SIGKILL mid-append.
The autouse checker then validates every directory.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from logstore import check, record_batch
from logstore.log import CLEAN_SHUTDOWN_FILE, Log

CONFIG = {"segment.bytes": 4000, "index.interval.bytes": 200}


def build_log(path, batches: int = 12, per_batch: int = 4) -> list[tuple[int, int, int]]:
    """Write a log; return (base_offset, position, size) of each batch of the last segment."""
    with Log.open(path, CONFIG) as log:
        for i in range(batches):
            log.append([f"value-{i}-{j}".encode() * 3 for j in range(per_batch)],
                       keys=[f"k{j}".encode() for j in range(per_batch)],
                       compression=i % 5)
        last = log.active_segment
        infos = [(b.base_offset, b.position, b.size) for b in log.batch_infos(last.base_offset)]
    return infos


def records_of(path) -> list[tuple[int, bytes]]:
    with Log.open(path, CONFIG) as log:
        return [(r.offset, r.value) for b in log.batches() for r in b.records()]


def mark_unclean(path) -> None:
    marker = os.path.join(path, CLEAN_SHUTDOWN_FILE)
    if os.path.exists(marker):
        os.unlink(marker)


def last_log_file(path) -> str:
    return os.path.join(path, sorted(n for n in os.listdir(path) if n.endswith(".log"))[-1])


def test_last_batch_cut_at_every_byte_keeps_exactly_the_earlier_batches(tmp_path):
    pristine = tmp_path / "pristine-0"
    infos = build_log(pristine)
    expected_all = records_of(pristine)
    base, position, size = infos[-1]
    expected = [(o, v) for o, v in expected_all if o < base]
    for cut in range(1, size):
        work = tmp_path / "work-0"
        shutil.copytree(pristine, work)
        mark_unclean(work)
        with open(last_log_file(work), "r+b") as f:
            f.truncate(position + cut)
        with Log.open(work, CONFIG) as log:
            assert log.log_end_offset == base, f"cut at {cut}"
            assert log.recovery_report.truncated_bytes == cut
            got = [(r.offset, r.value) for b in log.batches() for r in b.records()]
        assert got == expected, f"cut at {cut}"
        assert check.check(str(work)) == []
        shutil.rmtree(work)


@pytest.mark.parametrize("seed", range(40))
def test_a_flipped_bit_cuts_the_log_at_the_damaged_batch(tmp_path, seed):
    rng = random.Random(seed)
    pristine = tmp_path / "pristine-0"
    infos = build_log(pristine)
    expected_all = records_of(pristine)
    # Damage a byte the CRC or the framing protects: length, magic, CRC, attributes..end.
    base, position, size = rng.choice(infos)
    offset_in_batch = rng.choice([8, 9, 10, 11] + list(range(16, size)))
    work = tmp_path / "work-0"
    shutil.copytree(pristine, work)
    mark_unclean(work)
    with open(last_log_file(work), "r+b") as f:
        f.seek(position + offset_in_batch)
        byte = f.read(1)[0]
        f.seek(position + offset_in_batch)
        f.write(bytes([byte ^ (1 << rng.randrange(8))]))
    with Log.open(work, CONFIG) as log:
        assert log.log_end_offset == base
        assert log.recovery_report.truncated_bytes > 0
        got = [(r.offset, r.value) for b in log.batches() for r in b.records()]
    assert got == [(o, v) for o, v in expected_all if o < base]


def test_a_garbage_tail_is_cut_and_nothing_valid_is_lost(tmp_path):
    path = tmp_path / "t-0"
    build_log(path)
    expected = records_of(path)
    mark_unclean(path)
    with open(last_log_file(path), "ab") as f:
        f.write(os.urandom(777))
    with Log.open(path, CONFIG) as log:
        assert log.recovery_report.truncated_bytes == 777
        assert [(r.offset, r.value) for b in log.batches() for r in b.records()] == expected


def test_a_zero_filled_tail_from_a_power_cut_is_cut(tmp_path):
    path = tmp_path / "t-0"
    build_log(path)
    expected = records_of(path)
    mark_unclean(path)
    with open(last_log_file(path), "ab") as f:
        f.write(b"\0" * 4096)
    with Log.open(path, CONFIG) as log:
        assert [(r.offset, r.value) for b in log.batches() for r in b.records()] == expected


def test_later_segments_are_removed_after_a_cut_in_an_earlier_one(tmp_path):
    path = tmp_path / "t-0"
    build_log(path, batches=120)
    with Log.open(path, CONFIG) as log:
        bases = [s.base_offset for s in log.segments]
        second = log.segments[1]
        cut_at = second.base_offset
    assert len(bases) >= 4
    mark_unclean(path)
    # Recovery starts at the segment holding the recovery point: force it to the beginning.
    for name in os.listdir(path):
        if name.startswith("recovery-point"):
            os.unlink(os.path.join(path, name))
    with open(second.log_path, "r+b") as f:
        f.seek(30)
        f.write(b"\xff\xff")
    with Log.open(path, CONFIG) as log:
        assert log.log_end_offset == cut_at
        assert [s.base_offset for s in log.segments] == bases[:2]
        assert log.recovery_report.segments_removed == bases[2:]
    for base in bases[2:]:
        assert not os.path.exists(os.path.join(path, f"{base:020d}.log"))


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated-entry", "zeros"])
def test_missing_or_corrupt_index_files_are_rebuilt_after_a_clean_shutdown(tmp_path, damage):
    path = tmp_path / "t-0"
    build_log(path, batches=40)
    expected = records_of(path)
    index = os.path.join(path, f"{0:020d}.index")
    original = open(index, "rb").read()
    assert len(original) >= 16
    if damage == "missing":
        os.unlink(index)
    elif damage == "garbage":
        open(index, "wb").write(os.urandom(len(original)))
    elif damage == "truncated-entry":
        open(index, "wb").write(original[:-3])
    else:
        open(index, "wb").write(original + b"\0" * 64)
    with Log.open(path, CONFIG) as log:
        assert 0 in log.recovery_report.indexes_rebuilt
        assert [(r.offset, r.value) for b in log.batches() for r in b.records()] == expected
        for offset, _ in expected[::7]:
            assert next(log.read(offset).batches()).last_offset >= offset
    assert open(index, "rb").read() == original


def test_leftover_files_of_interrupted_operations_are_removed(tmp_path):
    path = tmp_path / "t-0"
    build_log(path)
    mark_unclean(path)
    for name in (f"{0:020d}.log.swap", f"{5:020d}.log.deleted", f"{999:020d}.index"):
        open(os.path.join(path, name), "wb").write(b"junk")
    with Log.open(path, CONFIG) as log:
        removed = set(log.recovery_report.leftovers_removed)
    assert {f"{0:020d}.log.swap", f"{5:020d}.log.deleted", f"{999:020d}.index"} <= removed


WRITER = textwrap.dedent("""
    import sys
    from logstore.log import Log
    log = Log.open(sys.argv[1], {"segment.bytes": 20000, "flush.messages": 1})
    i = 0
    while True:
        info = log.append([b"record-%d" % i] * 3)
        print(info.last_offset, flush=True)      # acknowledged: fsynced before this line
        i += 1
""")


@pytest.mark.parametrize("delay", [0.3, 0.6, 1.0])
def test_kill_9_mid_append_loses_nothing_acknowledged(tmp_path, delay):
    path = tmp_path / "t-0"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True)
    acked = []
    deadline = time.time() + 30
    while len(acked) < 5 and time.time() < deadline:
        acked.append(int(proc.stdout.readline()))
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    acked += [int(line) for line in out.split()]
    assert acked, "the writer acknowledged nothing"
    with Log.open(path, {"segment.bytes": 20000}) as log:
        assert not log.recovery_report.clean_shutdown
        assert log.log_end_offset >= acked[-1] + 1
        offsets = [r.offset for b in log.batches() for r in b.records()]
    assert offsets == list(range(len(offsets)))
