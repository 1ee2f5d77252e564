"""Where the time goes, measured: cProfile and (when it works) perf, over one benchmark case.

Used for every MISS in the report, so the explanation names functions and symbols from a
profile of the very loop that missed, not a guess.

- cProfile gives per-call attribution at the Python level and exact times for C calls made from
  Python (cffi functions, os.write, fdatasync); it inflates the cost of Python-level code (a few
  hundred ns per profiled call), so Python bookkeeping looks bigger than it is.
- perf samples the whole process without that bias and sees inside the C core, libc and the
  kernel (page-cache copies, fsync). It needs perf installed and perf_event_paranoid permitting;
  otherwise it is skipped and the report says so.

Each function is put in a category so that the report can state the gap between subject and
baseline per category: C core (logstore._native), system calls (writes, reads, syncs), Python
in logstore/, the benchmark's own loop, other Python/library code.
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import pstats
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

from bench._timer import Case

# C functions that are (mostly) one system call; sqlite's execute/commit count too (they end in
# write and fsync).
SYSCALL_NAMES = frozenset((
    "write", "pwrite", "read", "readinto", "pread", "fsync", "fdatasync", "sync", "open",
    "close", "unlink", "execute", "executemany", "commit", "mmap", "flush", "replace", "rename",
    "ftruncate", "posix_fadvise", "fstat", "stat"))
PERF_SAMPLE_HZ = 1999
PERF_ATTACH_S = 0.4


@dataclass
class Entry:
    name: str
    category: str
    us_per_iteration: float
    share: float


@dataclass
class Profile:
    case: str
    iterations: int
    us_per_iteration: float
    entries: list[Entry]
    categories: dict[str, float]          # category -> us per iteration

    def to_json(self) -> dict:
        return {"case": self.case, "iterations": self.iterations,
                "us_per_iteration": self.us_per_iteration,
                "categories_us": self.categories,
                "top": [e.__dict__ for e in self.entries]}


_BUILTIN = re.compile(r"<(?:built-in method|method) '?([\w.]+)'?")


def builtin_name(function: str) -> str:
    """The bare name of a C function as cProfile shows it: "<built-in method posix.write>" and
    "<method 'write' of '_io.BufferedWriter' objects>" both give "write"."""
    m = _BUILTIN.search(function)
    return m[1].rsplit(".", 1)[-1] if m else function


def categorize(filename: str, function: str) -> str:
    if filename == "~":
        name = builtin_name(function)
        if name.startswith("ls_io_") or name in SYSCALL_NAMES:
            return "system calls"
        if "logstore._native" in function:
            return "C core"
        return "built-ins"
    if "/logstore/" in filename:
        return "logstore Python"
    if "/bench/" in filename:
        return "benchmark loop"
    return "other Python"


PROFILE_ROUNDS = 2


def cprofile_cases(cases: list[Case], iterations: int, top: int = 8) -> list[Profile]:
    """Profile each case for about `iterations` iterations, in PROFILE_ROUNDS halves run in
    alternating order (A B, B A), as the timer does, so neither case always runs right after
    the other's I/O; the halves are merged. One Profile per case, in order."""
    half = max(1, iterations // PROFILE_ROUNDS)
    merged: dict[str, tuple[pstats.Stats | None, float]] = {c.name: (None, 0.0) for c in cases}
    for round_number in range(PROFILE_ROUNDS):
        for case in (cases if round_number % 2 == 0 else cases[::-1]):
            profiler, elapsed = _profile_once(case, half)
            stats, total = merged[case.name]
            if stats is None:
                stats = pstats.Stats(profiler)
            else:
                stats.add(profiler)
            merged[case.name] = (stats, total + elapsed)
    done = half * PROFILE_ROUNDS
    return [_summarise(case.name, merged[case.name][0], merged[case.name][1], done, top)
            for case in cases]


def _profile_once(case: Case, iterations: int) -> tuple[cProfile.Profile, float]:
    state = case.setup(iterations)
    os.sync()                     # as the timer does: no writeback left over from earlier work
    profiler = cProfile.Profile()
    try:
        start = time.perf_counter()
        profiler.enable()
        case.run(state, iterations)
        profiler.disable()
        total = time.perf_counter() - start
    finally:
        case.teardown(state)
    return profiler, total


def _summarise(name: str, stats: pstats.Stats, total: float, iterations: int,
               top: int) -> Profile:
    rows = []
    categories: dict[str, float] = {}
    for (filename, _line, function), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        label = _function_name(filename, function)
        category = categorize(filename, label)
        us = tottime / iterations * 1e6
        categories[category] = categories.get(category, 0.0) + us
        rows.append((us, label, category))
    rows.sort(reverse=True)
    per_iteration = total / iterations * 1e6
    entries = [Entry(label, category, us, us / per_iteration if per_iteration else 0.0)
               for us, label, category in rows[:top]]
    return Profile(name, iterations, per_iteration, entries,
                   dict(sorted(categories.items(), key=lambda kv: -kv[1])))


def _function_name(filename: str, function: str) -> str:
    if filename == "~":
        return function
    short = filename.split("/logstore/")[-1] if "/logstore/" in filename else \
        os.path.basename(filename)
    if "/logstore/" in filename:
        short = "logstore/" + short
    return f"{short}:{function}"


# ------------------------------------------------------------------------------------------------
# perf


def perf_available() -> bool:
    if shutil.which("perf") is None:
        return False
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/sys/kernel/perf_event_paranoid", encoding="utf-8") as f:
            level = int(f.read().strip())
        return level <= 2 or os.geteuid() == 0
    return False


@dataclass
class PerfProfile:
    case: str
    samples: int
    symbols: list[tuple[float, str, str]]        # (percent, dso, symbol)
    groups: dict[str, float]                     # dso group -> percent

    def to_json(self) -> dict:
        return {"case": self.case, "samples": self.samples,
                "symbols": [{"percent": p, "dso": d, "symbol": s} for p, d, s in self.symbols],
                "groups": self.groups}


def perf_case(case: Case, iterations: int, top: int = 8) -> PerfProfile | None:
    """Sample this process with `perf record` while the case runs; None if perf is unusable."""
    if not perf_available():
        return None
    state = case.setup(iterations)
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as tmp:
        data = os.path.join(tmp, "perf.data")
        try:
            proc = subprocess.Popen(
                ["perf", "record", "-q", "-F", str(PERF_SAMPLE_HZ), "-p", str(os.getpid()),
                 "-o", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            case.teardown(state)
            return None
        try:
            time.sleep(PERF_ATTACH_S)
            case.run(state, iterations)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            case.teardown(state)
        return _perf_report(case.name, data, top)


_PERF_LINE = re.compile(r"^\s*([0-9.]+)%\s+(\d+)\s+(\S+)\s+\[[.k]\]\s+(.+?)\s*$")


def _perf_report(name: str, data: str, top: int) -> PerfProfile | None:
    try:
        out = subprocess.run(
            ["perf", "report", "-i", data, "--stdio", "--no-children", "-n",
             "--sort", "dso,sym", "-g", "none", "--percent-limit", "0.3"],
            capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    symbols = []
    samples = 0
    groups: dict[str, float] = {}
    for line in out.stdout.splitlines():
        m = _PERF_LINE.match(line)
        if m:
            percent, count, dso, symbol = float(m[1]), int(m[2]), m[3], m[4]
            samples += count
            group = _dso_group(dso, symbol)
            groups[group] = groups.get(group, 0.0) + percent
            symbols.append((percent, dso, symbol))
    if not symbols:
        return None
    symbols.sort(reverse=True)
    return PerfProfile(name, samples, symbols[:top],
                       dict(sorted(groups.items(), key=lambda kv: -kv[1])))


def _dso_group(dso: str, symbol: str) -> str:
    if dso.startswith("[kernel"):
        return "kernel"
    if "_native" in dso:
        return "logstore C core"
    if dso.startswith("libpython") or dso.startswith("python"):
        return "Python interpreter"
    if dso.startswith("libc"):
        return "libc"
    if "sqlite" in dso:
        return "sqlite"
    return "other"
