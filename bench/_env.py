"""What the benchmarks ran on, where their data lives, and the page-cache helpers they share.

Everything here reads /proc, /sys and statvfs; nothing needs privileges. Dropping a file from the
page cache uses posix_fadvise(POSIX_FADV_DONTNEED) on that file only (after an fsync, since dirty
pages cannot be dropped), never /proc/sys/vm/drop_caches: other processes' caches are left alone.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 1 << 30
MIB = 1 << 20


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def ram_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def mount_of(path: str) -> dict:
    """The /proc/mounts entry of the file system holding `path`: the longest mount point that
    contains its real path and is on the same device (a later mount over the same point wins)."""
    real = os.path.realpath(path)
    device = os.stat(real).st_dev
    best = None
    for source, point, fstype, options in _mounts():
        if not (real == point or real.startswith(point.rstrip("/") + "/")):
            continue
        if _device(point) != device:
            continue
        if best is None or len(point) >= len(best["mount_point"]):
            best = {"device": source, "mount_point": point, "fstype": fstype,
                    "options": options}
    return best or {"device": "?", "mount_point": "?", "fstype": "?", "options": ""}


def _mounts() -> list[tuple[str, str, str, str]]:
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 4:
            out.append((parts[0], parts[1].replace("\\040", " "), parts[2], parts[3]))
    return out


def _device(path: str) -> int | None:
    try:
        return os.stat(path).st_dev
    except OSError:
        return None


def free_bytes(path: str) -> int:
    return shutil.disk_usage(path).free


def dirty_thresholds() -> dict:
    """The kernel's writeback thresholds (vm.dirty_*): when buffered writes reach the disk."""
    out = {}
    for name in ("dirty_background_ratio", "dirty_ratio", "dirty_background_bytes",
                 "dirty_bytes", "dirty_expire_centisecs"):
        with contextlib.suppress(OSError, ValueError):
            with open(f"/proc/sys/vm/{name}", encoding="utf-8") as f:
                out[name] = int(f.read().strip())
    return out


def dirty_background_bytes() -> int:
    """Roughly how many dirty bytes the kernel tolerates before background writeback starts."""
    t = dirty_thresholds()
    if t.get("dirty_background_bytes"):
        return t["dirty_background_bytes"]
    return ram_bytes() * t.get("dirty_background_ratio", 10) // 100


def git_commit() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", REPO_ROOT, "status", "--porcelain", "--",
                                "logstore", "csrc"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            return out.stdout.strip() + (" (+ uncommitted changes in logstore/ or csrc/)"
                                         if dirty.stdout.strip() else "")
    return "unknown"


def machine() -> dict:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_bytes": ram_bytes(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "dirty": dirty_thresholds(),
        "git": git_commit(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def data_root(requested: str | None = None) -> str:
    """A fresh temporary directory for benchmark data, on the repository's file system: the
    given one, else next to the checkout (its parent directory), else inside it."""
    if requested:
        os.makedirs(requested, exist_ok=True)
        return tempfile.mkdtemp(prefix="logstore-bench-", dir=requested)
    repo_device = os.stat(REPO_ROOT).st_dev
    parent = os.path.dirname(REPO_ROOT)
    for candidate in (parent, REPO_ROOT):
        with contextlib.suppress(OSError):
            if os.stat(candidate).st_dev == repo_device and os.access(candidate, os.W_OK):
                return tempfile.mkdtemp(prefix=".logstore-bench-", dir=candidate)
    return tempfile.mkdtemp(prefix="logstore-bench-")


def remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def drop_from_cache(paths: list[str]) -> None:
    """fsync each file, then ask the kernel to drop its pages (posix_fadvise DONTNEED)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cached_fraction(paths: list[str]) -> float | None:
    """Fraction of the files' pages resident in the page cache: mincore(2) over a fresh mapping
    (mapping does not fault pages in). None when libc cannot be reached."""
    try:
        import ctypes
        import mmap
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long)
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
    page = mmap.PAGESIZE
    resident = total = 0
    for path in paths:
        size = os.path.getsize(path)
        if size == 0:
            continue
        pages = (size + page - 1) // page
        vec = (ctypes.c_ubyte * pages)()
        fd = os.open(path, os.O_RDONLY)
        try:
            addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr is None or addr == ctypes.c_void_p(-1).value:
                return None
            try:
                if libc.mincore(addr, size, vec) != 0:
                    return None
            finally:
                libc.munmap(addr, size)
        finally:
            os.close(fd)
        resident += sum(b & 1 for b in bytes(vec))
        total += pages
    return resident / total if total else None


def pressure() -> dict:
    """Linux PSI: the share of the last 60 s in which some task waited for CPU or I/O (%),
    a measure of how much other work competed with the benchmark."""
    out = {}
    for kind in ("cpu", "io"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/pressure/{kind}", encoding="utf-8") as f:
                some = f.readline().split()
            out[kind] = float(dict(p.split("=") for p in some[1:])["avg60"])
    return out


def python_speed_probe() -> float:
    """CPU seconds of a 10M-iteration `x += i` loop: how fast this interpreter runs here."""
    start = time.process_time()
    x = 0
    for i in range(10_000_000):
        x += i
    return time.process_time() - start


def rss() -> dict:
    """VmRSS, RssAnon and RssFile of this process in bytes (/proc/self/status)."""
    out = {}
    with contextlib.suppress(OSError):
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(value.split()[0]) * 1024
    return out


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
