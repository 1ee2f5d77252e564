"""Benchmark cases shared by several sections: logstore appends and their raw-file baselines.

Every case writes to a fresh file or log directory per round (setup) and removes it afterwards
(teardown), so rounds do not inherit each other's file sizes or page-cache state. Buffered cases
drop their files without syncing them: the data of a removed file never reaches the disk, so the
kernel's writeback of one round does not slow the next (each round stays far below the
dirty-background threshold). That makes buffered figures a measure of the CPU and page-cache
path, for subject and baseline alike; the device shows in the durable and growth sections.

Baselines are the strongest simple Python program doing the same job: one `write` of the joined
records per batch (join included: the records arrive as a list), `os.write` + `os.fdatasync` of
precomputed chunks, and so on. None of them is slowed down to flatter logstore.
"""

from __future__ import annotations

import os
import threading
import time

from logstore import _ffi
from logstore.log import Log

from bench import _env
from bench._section import RECORDS_PER_BATCH, Context
from bench._timer import Case

DURABILITY_BUFFERED = "buffered (page cache, no fsync)"
DURABILITY_FSYNC_BATCH = "fdatasync per batch"
DURABILITY_FSYNC_MESSAGE = "fdatasync per message"


def units(size: int, records: int = RECORDS_PER_BATCH) -> dict[str, float]:
    return {"records": records, "bytes": records * size}


# ------------------------------------------------------------------------------------------------
# logstore


def open_log(ctx: Context, name: str, config: dict | None = None) -> Log:
    return Log.open(ctx.path(name), config)


def close_log(log: Log, keep: bool = False) -> None:
    """Drop a benchmark log without flushing (its data is discarded with its directory)."""
    log.abandon()
    if not keep:
        _env.remove(log.directory)


def log_append(ctx: Context, size: int, *, durable: bool = False,
               name: str = "logstore Log.append") -> Case:
    pool = ctx.records.pools[size]
    count = len(pool)

    def run(log: Log, n: int) -> None:
        append = log.append
        for i in range(n):
            append(pool[i % count], durable=durable)

    return Case(name, run, units(size), setup=lambda n: open_log(ctx, "log"),
                teardown=close_log)


def log_append_batch(ctx: Context, size: int, batches: list[bytearray], *, validate: bool,
                     name: str) -> Case:
    """append_batch appends the caller's buffer in place (base offset patched); validate=True
    also requires base offset 0, as a batch from a client has, so it is reset before each append
    (one 8-byte store through the C core, counted against logstore)."""
    count = len(batches)

    def run(log: Log, n: int) -> None:
        append = log.append_batch
        reset = _ffi.set_base_offset
        for i in range(n):
            batch = batches[i % count]
            reset(batch, 0)
            append(batch, validate=validate)

    return Case(name, run, units(size), setup=lambda n: open_log(ctx, "log"),
                teardown=close_log)


def log_put_single(ctx: Context, size: int, *, durable: bool, name: str,
                   config: dict | None = None) -> Case:
    """One record per append (a per-message put); records the latency of every put."""
    values = ctx.records.singles(size)
    count = len(values)

    def run(log: Log, n: int) -> list[int]:
        append = log.append
        clock = time.perf_counter_ns
        latencies = [0] * n
        for i in range(n):
            start = clock()
            append([values[i % count]], durable=durable)
            latencies[i] = clock() - start
        return latencies

    return Case(name, run, units(size, 1), setup=lambda n: open_log(ctx, "log", config),
                teardown=close_log)


# ------------------------------------------------------------------------------------------------
# raw files


class RawFile:
    def __init__(self, path: str, buffered: bool = True):
        self.path = path
        self.file = open(path, "wb", buffering=-1 if buffered else 0)
        self.fd = self.file.fileno()

    def close(self) -> None:
        self.file.close()
        _env.remove(self.path)


def raw_join_write(ctx: Context, size: int, name: str = "raw join+write") -> Case:
    """The raw buffered limit: f.write(b"".join(batch)) per batch."""
    pool = ctx.records.pools[size]
    count = len(pool)

    def run(raw: RawFile, n: int) -> None:
        write = raw.file.write
        join = b"".join
        for i in range(n):
            write(join(pool[i % count]))
        raw.file.flush()

    return Case(name, run, units(size), setup=lambda n: RawFile(ctx.path("raw")),
                teardown=RawFile.close)


def raw_per_record_write(ctx: Context, size: int, name: str = "raw f.write per record") -> Case:
    """The naive loop: one buffered f.write per record."""
    pool = ctx.records.pools[size]
    count = len(pool)

    def run(raw: RawFile, n: int) -> None:
        write = raw.file.write
        for i in range(n):
            for value in pool[i % count]:
                write(value)
        raw.file.flush()

    return Case(name, run, units(size), setup=lambda n: RawFile(ctx.path("raw")),
                teardown=RawFile.close)


def raw_write_chunks(ctx: Context, size: int, chunks: list, name: str,
                     records: int = RECORDS_PER_BATCH) -> Case:
    """f.write of precomputed chunks (e.g. the very bytes of pre-built batches)."""
    count = len(chunks)

    def run(raw: RawFile, n: int) -> None:
        write = raw.file.write
        for i in range(n):
            write(chunks[i % count])
        raw.file.flush()

    return Case(name, run, units(size, records), setup=lambda n: RawFile(ctx.path("raw")),
                teardown=RawFile.close)


def raw_write_fdatasync(ctx: Context, size: int, chunks: list, name: str,
                        records: int = RECORDS_PER_BATCH, latencies: bool = False) -> Case:
    """os.write(fd, chunk); os.fdatasync(fd) per chunk."""
    count = len(chunks)

    def run(raw: RawFile, n: int):
        write, sync, fd = os.write, os.fdatasync, raw.fd
        if not latencies:
            for i in range(n):
                write(fd, chunks[i % count])
                sync(fd)
            return None
        clock = time.perf_counter_ns
        out = [0] * n
        for i in range(n):
            start = clock()
            write(fd, chunks[i % count])
            sync(fd)
            out[i] = clock() - start
        return out

    return Case(name, run, units(size, records),
                setup=lambda n: RawFile(ctx.path("raw"), buffered=False), teardown=RawFile.close)


READ_CHUNK = 1 << 20


def raw_read_files(name: str, files: list[str], units: dict[str, float],
                   setup=lambda n: None) -> Case:
    """f.readinto of whole files, in order, into one reusable 1 MiB buffer: the raw limit of
    a scan (recovery)."""
    buffer = memoryview(bytearray(READ_CHUNK))

    def run(state, n: int) -> None:
        for _ in range(n):
            for path in files:
                with open(path, "rb", buffering=0) as f:
                    while f.readinto(buffer):
                        pass

    return Case(name, run, units, setup=setup)


# ------------------------------------------------------------------------------------------------
# threads (group commit)


def run_threads(threads: int, n: int, work) -> None:
    """Split n operations over `threads` threads running work(thread_index, count); wait."""
    shares = [n // threads + (1 if i < n % threads else 0) for i in range(threads)]
    workers = [threading.Thread(target=work, args=(i, shares[i])) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def log_group_commit(ctx: Context, size: int, threads: int) -> Case:
    values = ctx.records.singles(size)

    def run(log: Log, n: int) -> None:
        def work(index: int, count: int) -> None:
            append = log.append
            for i in range(count):
                append([values[(index * 7 + i) % len(values)]], durable=True)
        run_threads(threads, n, work)

    return Case(f"logstore, {threads} threads", run, units(size, 1),
                setup=lambda n: open_log(ctx, "log"), teardown=close_log)


def raw_group_commit(ctx: Context, size: int, threads: int) -> Case:
    """N threads: os.write under a lock (appends must not interleave), then os.fdatasync."""
    values = ctx.records.singles(size)

    def run(raw: RawFile, n: int) -> None:
        lock = threading.Lock()

        def work(index: int, count: int) -> None:
            write, sync, fd = os.write, os.fdatasync, raw.fd
            for i in range(count):
                with lock:
                    write(fd, values[(index * 7 + i) % len(values)])
                sync(fd)
        run_threads(threads, n, work)

    return Case(f"raw write+fdatasync, {threads} threads", run, units(size, 1),
                setup=lambda n: RawFile(ctx.path("raw"), buffered=False), teardown=RawFile.close)
