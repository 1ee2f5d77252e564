"""Section `recovery`: how fast Log.open scans a log that must be recovered in full.

A log of >= 1 GiB (quick: 256 MiB) of 1 KiB records is built and closed cleanly; before each
timed open the clean-shutdown marker and the recovery-point checkpoint are removed, so recovery
scans every segment from offset 0 (CRC of every batch, offsets checked, indexes rebuilt, then the
rebuilt indexes fsynced). The limit is reading the same .log files raw (`f.readinto`, 1 MiB
chunks) in the same page-cache state.

Two page-cache states, stated on the rows: *cached* (the files were just written and read, as
after a process crash) and *cold* (pages dropped with posix_fadvise(DONTNEED) before each timed
run, as after a reboot). The target (>= 2 GB/s) is for the cached scan; a cold scan is bounded
by the device, which the raw row measures.
"""

from __future__ import annotations

import contextlib
import glob
import os

from logstore import checkpoint
from logstore.log import CLEAN_SHUTDOWN_FILE, Log

from bench import _cases, _env
from bench._report import GB, Group, Row, Target
from bench._section import RECORDS_PER_BATCH, Context, new_result, section
from bench._timer import Case, compare

NAME = "recovery"
TARGET = Target("absolute", 2.0, "GB/s")


@section(NAME, "4. recovery: scan speed of a full recovery", order=40, weight_quick=8,
         weight_full=70)
def run(ctx: Context):
    result = new_result(NAME)
    log_bytes = ctx.pick(256 << 20, 1 << 30)
    path = ctx.path("recovery")
    size = 1024
    batch = ctx.records.batch
    with Log.open(path) as log:
        for i in range(-(-log_bytes // (size * RECORDS_PER_BATCH))):
            log.append(batch(size, i))
        records = log.log_end_offset
    files = log_files(path)
    total = sum(os.path.getsize(f) for f in files)
    result.intro = (
        f"A log of {total / GB:.2f} GB ({len(files)} segment(s), 1 KiB records in batches of "
        "1000, default segment.bytes), closed cleanly. Before each timed `Log.open` the "
        "clean-shutdown marker and the recovery-point checkpoint are removed, so every segment "
        "is recovered from offset 0: every batch CRC-checked, offsets validated, the offset and "
        "time indexes rebuilt and fsynced. GB/s = .log bytes scanned per second (10^9 B). The "
        "limit reads the same .log files with `f.readinto` in 1 MiB chunks, in the same "
        "page-cache state.")
    steps = ctx.steps(2)
    groups = []
    for cold in (False, True):
        state = "cold (pages dropped before each run)" if cold else "cached (page cache warm)"
        units = {"records": records, "bytes": total}
        subject = open_case(path, units, cold)
        limit = raw_case(files, units, cold)
        settings = ctx.settings_with(min_iterations=1, min_wall_s=0.0, settle=False,
                                     rounds=ctx.pick(3, 5 if not cold else 3))
        cmp = compare([subject, limit], settings,
                      on_round=steps.sub("cold" if cold else "cached"))
        steps.finish()
        s, b = cmp[subject.name], cmp[limit.name]
        resident = _env.cached_fraction(files)
        groups.append(Group(f"Full recovery of {total / GB:.2f} GB, {state}", [
            Row(f"Log.open recovering everything, {'cold' if cold else 'cached'}",
                f"recovery scan, {state}", s.rate("records"), s.rate("bytes") / 1e6,
                cmp.ratio(subject.name, limit.name, "bytes"), limit.name,
                None if cold else TARGET, measure=s.rate("bytes") / GB,
                note=f"{s.rate('bytes') / GB:.2f} GB/s"),
            Row(f"raw f.readinto of the .log files, {'cold' if cold else 'cached'} "
                "(the limit)", f"read, {state}", b.rate("records"), b.rate("bytes") / 1e6,
                cmp.ratio(limit.name, limit.name, "bytes"), limit.name,
                note=f"{b.rate('bytes') / GB:.2f} GB/s"),
        ]))
        result.raw["cold" if cold else "cached"] = {
            **cmp.to_json(), "page_cache_resident_after": resident}
        if not cold:
            # Profile the cached open only (a profile of the cold open would profile the disk).
            groups[-1].rows[0].profile = (subject, limit, 1)
    result.groups.extend(groups)
    cached = result.raw["cached"]["page_cache_resident_after"]
    result.notes.append(
        "Page cache, measured with mincore(2) on the .log files: "
        + (f"{cached * 100:.0f}% resident after the cached runs" if cached is not None
           else "unknown (mincore unavailable)")
        + "; the cold runs drop the pages (fsync + posix_fadvise DONTNEED on every file of "
        "the log directory) right before each timed run. Unlike the other sections, MB/s here "
        "counts .log bytes (what the scan reads), as GB/s does.")
    return result


def log_files(path: str) -> list[str]:
    return sorted(glob.glob(os.path.join(path, "*.log")))


def _force_full_recovery(path: str) -> None:
    for name in (CLEAN_SHUTDOWN_FILE, checkpoint.RECOVERY_POINT_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(path, name))


def open_case(path: str, units: dict[str, float], cold: bool) -> Case:
    def setup(n: int) -> dict:
        _force_full_recovery(path)
        if cold:
            _env.drop_from_cache([os.path.join(path, f) for f in os.listdir(path)])
        return {}

    def run(state: dict, n: int) -> None:
        """Times Log.open only: the log of the last iteration is closed by teardown."""
        for i in range(n):
            if i:
                state.pop("log").close()
                _force_full_recovery(path)
            log = state["log"] = Log.open(path)
            recovered = len(log.recovery_report.segments_recovered)
            assert recovered == len(log.segments), \
                f"only {recovered} of {len(log.segments)} segments recovered"

    def teardown(state: dict) -> None:
        if "log" in state:
            state.pop("log").close()

    return Case("logstore Log.open (full recovery)", run,
                dict(units), setup=setup, teardown=teardown)


def raw_case(files: list[str], units: dict[str, float], cold: bool) -> Case:
    def setup(n: int) -> None:
        if cold:
            _env.drop_from_cache(files)

    return _cases.raw_read_files("raw f.readinto", files, units, setup=setup)
