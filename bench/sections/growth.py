"""Section `growth`: what changes as the log grows (it should not).

One log and one raw file grow side by side from nothing to the top size (10 GiB, or a quarter of
the free disk if that is less; quick mode 512 MiB), in batches of 100 records of 1 KiB (~100 KiB
per append, small enough to resolve the first megabytes). At each checkpoint (1 MiB, 2 MiB, 4
MiB, ... doubling) the section measures, interleaved with the raw baseline:
- cost per append: windows of appends to the log and to the raw file (f.write of the joined
  batch), alternating, median per append;
- offset lookup: Log.read(offset, 1 byte) for random offsets over the whole log (index lookup +
  forward scan, returning a view of the batch) vs the strongest simple equivalent: bisect over an
  in-memory list of batch start offsets kept while writing, and a slice of an mmap of the raw
  file;
- process RSS (VmRSS, and its anonymous and file-backed parts) before the lookups.
Then, separately: recovery time vs unflushed bytes. A log with a flushed, cleanly checkpointed
prefix gets U more bytes in a new segment and is abandoned (as by kill -9: the page cache keeps
the data); Log.open then recovers exactly that segment. Baseline: reading the U bytes raw.
"""

from __future__ import annotations

import bisect
import glob
import mmap
import os
import random
import shutil
import statistics
import time

from logstore import checkpoint
from logstore.log import CLEAN_SHUTDOWN_FILE, Log
from logstore.segment import parse_base_offset

from bench import _cases, _env, _plot
from bench._report import Group, Row, Table, fmt_num
from bench._section import Context, new_result, section
from bench._timer import Case, Ratio, Settings, compare

NAME = "growth"
RECORDS = 100                      # per append
SIZE = 1024
TOP_BYTES_MAX = 10 << 30
QUICK_TOP_BYTES = 512 << 20
FIRST_CHECKPOINT = 1 << 20
LOOKUPS = 200
DURABILITY = "buffered (page cache, no fsync)"


@section(NAME, "6. growth: append cost, lookup, recovery and memory as the log grows",
         order=60, weight_quick=10, weight_full=180)
def run(ctx: Context):
    result = new_result(NAME)
    free = _env.free_bytes(ctx.data_dir)
    top = QUICK_TOP_BYTES if ctx.quick else min(TOP_BYTES_MAX, _round_down_mib(free // 4))
    result.intro = (
        f"Top size **{_env.human_bytes(top)}**: "
        + ("quick mode." if ctx.quick else
           f"10 GiB, or a quarter of the {_env.human_bytes(free)} free on the data file system "
           "(statvfs, as df reports it) if that were less: the log and the raw file each reach "
           "the top size, and half the free space stays free.")
        + " Appends are batches of 100 records of 1 KiB (~100 KiB); both the log (default "
        "segment.bytes = 1 GiB, so it rolls) and the raw file are only buffered: past the "
        "kernel's dirty limits the page cache writes back and throttles both writers alike, "
        "which the raw curve shows. At each checkpoint (doubling from 1 MiB): the cost per "
        "append (windows of appends to the log and to the raw file, alternating L R, R L, L R; "
        "median per append), the lookup of random offsets over the whole log "
        "(`Log.read(offset, 1)`: index lookup, forward scan, a view of the batch) against a "
        "bisect over an in-memory list of batch offsets plus an mmap slice of the raw file, and "
        "the process's resident memory (before the lookups).")
    steps = ctx.steps(2)
    points = grow(ctx, top, steps.sub("growing"))
    steps.finish()
    recovery = recovery_vs_unflushed(ctx, steps.sub("recovery vs unflushed bytes"))
    steps.finish()
    report(ctx, result, points, recovery, top)
    return result


def _round_down_mib(n: int) -> int:
    return max(FIRST_CHECKPOINT, n >> 20 << 20)


def checkpoints(top: int) -> list[int]:
    out, size = [], FIRST_CHECKPOINT
    while size < top:
        out.append(size)
        size *= 2
    return out + [top]


class Growing:
    """The log and the raw file, grown in lockstep."""

    def __init__(self, ctx: Context):
        self.log = Log.open(ctx.path("growth-log"))
        self.raw_path = ctx.path("growth-raw")
        self.raw = open(self.raw_path, "wb")
        self.pools = [batch[:RECORDS] for batch in ctx.records.pools[SIZE]]
        self.joined = [b"".join(batch) for batch in self.pools]
        self.i = 0
        self.raw_offsets: list[int] = []         # base offset of each raw batch
        self.raw_positions: list[int] = []
        self.raw_size = 0
        self.raw_next_offset = 0

    def append_log(self, n: int) -> None:
        append, pools = self.log.append, self.pools
        for k in range(n):
            append(pools[(self.i + k) % len(pools)])
        self.i += n

    def append_raw(self, n: int) -> None:
        """f.write of the joined batch, keeping each batch's first offset and position (what
        a raw program needs to find an offset again; logstore keeps its index)."""
        write, join, pools = self.raw.write, b"".join, self.pools
        offsets, positions = self.raw_offsets, self.raw_positions
        for k in range(n):
            data = join(pools[(self.i + k) % len(pools)])
            write(data)
            offsets.append(self.raw_next_offset)
            positions.append(self.raw_size)
            self.raw_next_offset += RECORDS
            self.raw_size += len(data)
        self.raw.flush()
        self.i += n

    def step(self, n: int) -> None:
        self.append_log(n)
        self.append_raw(n)

    @property
    def log_bytes(self) -> int:
        return self.log.size_in_bytes

    def close(self) -> None:
        self.log.abandon()
        self.raw.close()
        _env.remove(self.log.directory)
        _env.remove(self.raw_path)


def grow(ctx: Context, top: int, on_progress) -> list[dict]:
    g = Growing(ctx)
    window = ctx.pick(24, 96)
    fill_step = ctx.pick(32, 256)
    rng = random.Random(7)
    points = []
    marks = checkpoints(top)
    try:
        for n, mark in enumerate(marks):
            while g.log_bytes < mark:
                g.step(min(fill_step, max(1, (mark - g.log_bytes) // (SIZE * RECORDS) + 1)))
            points.append(measure(g, window, rng))
            on_progress(n + 1, len(marks))
    finally:
        g.close()
    return points


WINDOW_MIN = 6
ROUNDS = 3


def measure(g: Growing, window_max: int, rng: random.Random) -> dict:
    """Append cost, lookups and RSS at the current size, each an interleaved comparison with
    the shared timer. A window writes at most about a twelfth of the log's size, so the first
    checkpoints stay apart."""
    size = g.log_bytes
    rss = _env.rss()
    window = max(WINDOW_MIN, min(window_max, size // (SIZE * RECORDS * 12)))
    fixed = Settings(rounds=ROUNDS, min_wall_s=0.0, min_iterations=window,
                     max_iterations=window, settle=False)
    appends = compare([Case("logstore Log.append", lambda state, n: g.append_log(n),
                            {"appends": 1}),
                       Case("raw join+write", lambda state, n: g.append_raw(n),
                            {"appends": 1})], fixed)
    rss_before_lookups = _env.rss()
    per_lookup = LOOKUPS // ROUNDS
    lookups = compare(lookup_cases(g, rng),
                      Settings(rounds=ROUNDS, min_wall_s=0.0, min_iterations=per_lookup,
                               max_iterations=per_lookup, settle=False))
    rss_after_lookups = _env.rss()
    log_a, raw_a = appends["logstore Log.append"], appends["raw join+write"]
    log_l, raw_l = lookups["logstore Log.read"], lookups["bisect + mmap slice"]
    return {"log_bytes": size, "append_log_s": log_a.seconds_per_iteration(),
            "append_raw_s": raw_a.seconds_per_iteration(),
            "append_ratio": appends.ratio("logstore Log.append", "raw join+write",
                                          "appends").median,
            "lookup_log_s": log_l.percentile_ns(50) / 1e9,
            "lookup_raw_s": raw_l.percentile_ns(50) / 1e9,
            "segments": len(g.log.segments), "rss": rss, "window": window,
            "rss_file_added_by_lookups": rss_after_lookups.get("RssFile", 0)
            - rss_before_lookups.get("RssFile", 0),
            "appends_raw": appends.to_json(), "lookups_raw": lookups.to_json()}


def lookup_cases(g: Growing, rng: random.Random) -> list[Case]:
    """Random offsets over the whole log: Log.read(offset, 1 byte) (index lookup, forward
    scan, a view of the batch) vs bisect over the raw program's offsets + an mmap slice."""
    end = min(g.log.log_end_offset, g.raw_next_offset)
    clock = time.perf_counter_ns
    batch_bytes = len(g.joined[0])

    def ours(state, n: int) -> list[int]:
        read, out = g.log.read, []
        for offset in [rng.randrange(end) for _ in range(n)]:
            start = clock()
            read(offset, 1)
            out.append(clock() - start)
        return out

    def raw_setup(n: int):
        f = open(g.raw_path, "rb")
        return f, mmap.mmap(f.fileno(), g.raw_size, access=mmap.ACCESS_READ)

    def raw_teardown(state) -> None:
        f, m = state
        m.close()
        f.close()

    def theirs(state, n: int) -> list[int]:
        view = memoryview(state[1])
        starts, positions, search, out = g.raw_offsets, g.raw_positions, bisect.bisect_right, []
        for offset in [rng.randrange(end) for _ in range(n)]:
            start = clock()
            j = search(starts, offset) - 1
            found = view[positions[j]:positions[j] + batch_bytes]
            out.append(clock() - start)
            found.release()
        view.release()
        return out

    return [Case("logstore Log.read", ours, {"lookups": 1}),
            Case("bisect + mmap slice", theirs, {"lookups": 1}, setup=raw_setup,
                 teardown=raw_teardown)]


# ------------------------------------------------------------------------------------------------
# Recovery time vs unflushed bytes


def recovery_vs_unflushed(ctx: Context, on_progress) -> list[dict]:
    sizes_mib = ctx.pick((1, 4, 16, 64, 128), (1, 4, 16, 64, 256, 1024))
    out = []
    for n, mib in enumerate(sizes_mib):
        path, unflushed, first = build_unflushed(ctx, mib << 20)
        try:
            segments = [p for p in sorted(glob.glob(os.path.join(path, "*.log")))
                        if parse_base_offset(os.path.basename(p)) >= first]
            subject = reopen_case(path, first, segments)
            limit = read_case(segments)
            settings = ctx.settings_with(min_iterations=1, min_wall_s=0.0, settle=False,
                                         rounds=3)
            cmp = compare([subject, limit], settings)
        finally:
            _env.remove(path)
        s, b = cmp[subject.name], cmp[limit.name]
        out.append({"unflushed_bytes": unflushed,
                    "recovery_s": statistics.median(s.seconds),
                    "raw_read_s": statistics.median(b.seconds),
                    "ratio": cmp.ratio(subject.name, limit.name, "bytes").median,
                    "raw": cmp.to_json()})
        on_progress(n + 1, len(sizes_mib))
    return out


PREFIX_BYTES = 8 << 20


def build_unflushed(ctx: Context, unflushed: int) -> tuple[str, int, int]:
    """A log with a flushed, checkpointed prefix and `unflushed` bytes in new segments after
    it (one, unless U exceeds segment.bytes), abandoned without a flush or a clean-shutdown
    marker. Returns (path, unflushed bytes, base offset of the first unflushed segment)."""
    path = ctx.path("unflushed")
    pool = [batch[:RECORDS] for batch in ctx.records.pools[SIZE]]
    with Log.open(path) as log:                       # close: flush + checkpoint + marker
        i = 0
        while log.size_in_bytes < PREFIX_BYTES:
            log.append(pool[i % len(pool)])
            i += 1
    saved = _read(os.path.join(path, checkpoint.RECOVERY_POINT_FILE))
    log = Log.open(path)
    first = log.roll().base_offset
    start = log.size_in_bytes
    while log.size_in_bytes - start < unflushed:
        log.append(pool[i % len(pool)])
        i += 1
    size = log.size_in_bytes - start
    log.abandon()
    with open(os.path.join(path, ".bench-recovery-point"), "wb") as f:
        f.write(saved)
    return path, size, first


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _make_unclean(path: str) -> None:
    """Back to the state a kill -9 after the prefix's checkpoint leaves: no marker, the
    recovery point at the end of the prefix."""
    marker = os.path.join(path, CLEAN_SHUTDOWN_FILE)
    if os.path.exists(marker):
        os.unlink(marker)
    shutil.copyfile(os.path.join(path, ".bench-recovery-point"),
                    os.path.join(path, checkpoint.RECOVERY_POINT_FILE))


def reopen_case(path: str, first: int, segments: list[str]) -> Case:
    """Log.open after the simulated kill: it must recover exactly the unflushed segments."""
    def setup(n: int) -> dict:
        _make_unclean(path)
        return {}

    def run(state: dict, n: int) -> None:
        for i in range(n):
            if i:
                state.pop("log").close()
                _make_unclean(path)
            log = state["log"] = Log.open(path)
            recovered = log.recovery_report.segments_recovered
            assert recovered and recovered[0] == first and \
                len(recovered) == len(segments), log.recovery_report

    def teardown(state: dict) -> None:
        if "log" in state:
            state.pop("log").close()

    size = sum(os.path.getsize(p) for p in segments)
    return Case("logstore Log.open (recovery)", run, {"records": 1, "bytes": size},
                setup=setup, teardown=teardown)


def read_case(segments: list[str]) -> Case:
    return _cases.raw_read_files("raw f.readinto of the segments", segments,
                                 {"records": 1,
                                  "bytes": sum(os.path.getsize(p) for p in segments)})


# ------------------------------------------------------------------------------------------------
# Report


def report(ctx: Context, result, points: list[dict], recovery: list[dict], top: int) -> None:
    mib = [p["log_bytes"] / (1 << 20) for p in points]
    result.tables.append(Table(
        "As the log grows (buffered appends of ~100 KiB; lookups of random offsets over the "
        "whole log; RSS measured before the lookups)",
        ["log size", "segments", "µs/append log", "µs/append raw", "ratio (raw ÷ log time)",
         "lookup µs log", "lookup µs raw", "VmRSS MiB", "RssAnon MiB", "RssFile MiB"],
        [[_env.human_bytes(p["log_bytes"]), p["segments"], fmt_num(p["append_log_s"] * 1e6),
          fmt_num(p["append_raw_s"] * 1e6), f"{p['append_ratio']:.2f}×",
          fmt_num(p["lookup_log_s"] * 1e6), fmt_num(p["lookup_raw_s"] * 1e6),
          fmt_num(p["rss"].get("VmRSS", 0) / (1 << 20)),
          fmt_num(p["rss"].get("RssAnon", 0) / (1 << 20)),
          fmt_num(p["rss"].get("RssFile", 0) / (1 << 20))] for p in points]))
    result.tables.append(Table(
        "Recovery time vs unflushed bytes (a new segment of U bytes after a flushed, "
        "checkpointed prefix; data in the page cache, as after kill -9)",
        ["unflushed", "Log.open ms", "raw read ms", "recovery GB/s", "ratio (raw ÷ open time)"],
        [[_env.human_bytes(r["unflushed_bytes"]), fmt_num(r["recovery_s"] * 1e3),
          fmt_num(r["raw_read_s"] * 1e3), fmt_num(r["unflushed_bytes"] / r["recovery_s"] / 1e9),
          f"{r['ratio']:.2f}×"] for r in recovery]))
    first, last = points[0], points[-1]
    rows = [
        Row(f"Log.append cost at {_env.human_bytes(last['log_bytes'])} vs at "
            f"{_env.human_bytes(first['log_bytes'])} (flat = 1.00×)", DURABILITY,
            ratio=_ratio(first["append_log_s"], last["append_log_s"]),
            limit="Log.append cost at the first checkpoint",
            note="ratio = first cost ÷ last cost"),
        Row(f"raw write cost at {_env.human_bytes(last['log_bytes'])} vs at "
            f"{_env.human_bytes(first['log_bytes'])} (the device showing through)", DURABILITY,
            ratio=_ratio(first["append_raw_s"], last["append_raw_s"]),
            limit="raw cost at the first checkpoint"),
        Row(f"Log.append vs raw at {_env.human_bytes(last['log_bytes'])}", DURABILITY,
            ratio=_ratio(last["append_log_s"], last["append_raw_s"], inverse=True),
            limit="raw join+write at the same size"),
        Row(f"offset lookup at {_env.human_bytes(last['log_bytes'])} vs at "
            f"{_env.human_bytes(first['log_bytes'])}", "read path (page cache)",
            ratio=_ratio(first["lookup_log_s"], last["lookup_log_s"]),
            limit="lookup time at the first checkpoint"),
        Row(f"offset lookup vs bisect + mmap slice, at {_env.human_bytes(last['log_bytes'])}",
            "read path (page cache)",
            ratio=_ratio(last["lookup_log_s"], last["lookup_raw_s"], inverse=True),
            limit="in-memory bisect + mmap slice"),
    ]
    result.groups.append(Group("Flatness: last checkpoint vs first (ratios of time, > 1 = the "
                               "top is faster)", rows))
    rss_anon = [p["rss"].get("RssAnon", 0) for p in points]
    file_growth = last["rss"].get("RssFile", 0) - first["rss"].get("RssFile", 0)
    by_lookups = sum(p["rss_file_added_by_lookups"] for p in points[:-1])
    result.notes.append(
        f"Memory: RssAnon (the heap) went from {_env.human_bytes(rss_anon[0])} at "
        f"{_env.human_bytes(first['log_bytes'])} to {_env.human_bytes(rss_anon[-1])} at "
        f"{_env.human_bytes(last['log_bytes'])}. RssFile (page-cache pages mapped into this "
        "process: the index mmaps and the segments' read mappings; shared and reclaimable) "
        f"grew by {_env.human_bytes(file_growth)}, of which "
        f"{_env.human_bytes(by_lookups)} was added while the benchmark's own random lookups "
        "ran (RSS is sampled before each checkpoint's lookups, so the last checkpoint's are "
        "not counted); the rest came with appends.")
    result.raw["points"] = points
    result.raw["recovery"] = recovery
    result.raw["top_bytes"] = top
    out = ctx.out_dir
    result.plots.append((_plot.lines(
        os.path.join(out, "growth_append_cost.png"), "Cost per append as the log grows",
        "log size (MiB)", "µs per append of ~100 KiB",
        {"logstore Log.append": (mib, [p["append_log_s"] * 1e6 for p in points]),
         "raw join+write": (mib, [p["append_raw_s"] * 1e6 for p in points])}, logx=True),
        "Cost per buffered append (100 × 1 KiB) vs log size; should stay flat"))
    result.plots.append((_plot.lines(
        os.path.join(out, "growth_lookup.png"), "Offset lookup time vs log size",
        "log size (MiB)", "µs per lookup (median of random offsets)",
        {"logstore Log.read(offset, 1 B)": (mib, [p["lookup_log_s"] * 1e6 for p in points]),
         "bisect + mmap slice": (mib, [p["lookup_raw_s"] * 1e6 for p in points])}, logx=True),
        "Lookup of a random offset vs log size"))
    result.plots.append((_plot.lines(
        os.path.join(out, "growth_recovery.png"), "Recovery time vs unflushed bytes",
        "unflushed MiB", "ms", {
            "logstore Log.open (recovery)": ([r["unflushed_bytes"] / (1 << 20) for r in recovery],
                                            [r["recovery_s"] * 1e3 for r in recovery]),
            "raw read of the same bytes": ([r["unflushed_bytes"] / (1 << 20) for r in recovery],
                                           [r["raw_read_s"] * 1e3 for r in recovery])},
        logx=True, logy=True), "Recovery time after kill -9 vs unflushed bytes (page cache warm)"))
    result.plots.append((_plot.lines(
        os.path.join(out, "growth_rss.png"), "Process memory vs log size", "log size (MiB)",
        "MiB", {key: (mib, [p["rss"].get(key, 0) / (1 << 20) for p in points])
                for key in ("VmRSS", "RssAnon", "RssFile")}, logx=True),
        "Resident memory of the benchmark process vs log size; should stay flat"))


def _ratio(a: float, b: float, inverse: bool = False) -> Ratio:
    """A single measured ratio (growth compares two points, not rounds)."""
    value = (b / a) if inverse else (a / b)
    return Ratio(value, value, value, [value])
