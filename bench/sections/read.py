"""Section `read`: reading a whole log back, against reading the same file raw.

A log is built per record size from the same records as `append` (batches of 1000), closed
cleanly and reopened; it is in the page cache (just written), and so is the raw read of it.

- `Log.read(offset, 1 MiB)` in a loop over the whole log: zero-copy views of the segment mmap
  (the bytes are not touched);
- the same loop copying every view into one reusable buffer (touches every byte, as a raw read
  does);
- the raw limit: `f.readinto` of the same .log file(s) into a reusable buffer, in the same chunk
  sizes as the Log.read results; target >= 0.8x;
- consume: Log.read + `RecordBatch.records()` for every batch (records decoded into Record
  objects with their bytes); target >= 2 M records/s for 100 B records.
"""

from __future__ import annotations

import glob
import os

from logstore.log import Log

from bench._report import MB, Group, Row, Target, comparison_row
from bench._section import RECORDS_PER_BATCH, Context, new_result, section
from bench._timer import Case, compare

NAME = "read"
READ_TARGET = Target("ratio", 0.8)
CONSUME_TARGET = Target("absolute", 2e6, "records/s")
FETCH_BYTES = 1 << 20
DURABILITY = "read path (data in page cache)"


@section(NAME, "3. read: reading the log back vs raw reads of the same file", order=30,
         weight_quick=8, weight_full=90)
def run(ctx: Context):
    result = new_result(NAME)
    log_bytes = ctx.pick(16 << 20, 256 << 20)
    result.intro = (
        f"A log of ~{log_bytes >> 20} MiB per record size (the records of `append`, batches of "
        f"1000), closed cleanly and reopened; its files are in the page cache. Each iteration "
        f"reads the whole log: `Log.read(offset, max_bytes={FETCH_BYTES >> 20} MiB)` from the "
        "log start to the end. The raw limit reads the same .log file(s) with `f.readinto` "
        "into one reusable buffer, in the same chunk sizes as the Log.read results.")
    steps = ctx.steps(4)
    for size in (100, 1024):
        label = f"{size} B" if size < 1024 else "1 KiB"
        log, chunks, records = build_log(ctx, size, log_bytes)
        ctx.at_end(log.close)
        views, copies, consume = log_cases(log, records, size, chunks)
        raw = raw_case(log, chunks, records, size)
        # same_work=False: reading cached files leaves no state behind, and the views case is
        # so fast that its iteration count would make the others run for minutes.
        cmp = compare([views, copies, raw], ctx.settings_with(settle=False), same_work=False,
                      on_round=steps.sub(f"Log.read {label}"))
        steps.finish()
        cmp2 = compare([consume, raw], ctx.settings_with(settle=False, min_iterations=1),
                       same_work=False, on_round=steps.sub(f"consume {label}"))
        steps.finish()
        rows = [
            _row(cmp, views.name, raw.name, f"Log.read, views (bytes untouched), {label}",
                 READ_TARGET, views),
            _row(cmp, copies.name, raw.name, f"Log.read + copy of every byte, {label}",
                 READ_TARGET, copies, raw),
            _row(cmp, raw.name, raw.name, f"raw f.readinto, {label} (the limit)", None),
        ]
        consume_row = _row(cmp2, consume.name, raw.name,
                           f"consume: Log.read + RecordBatch.records(), {label}",
                           CONSUME_TARGET if size == 100 else None, consume, raw)
        consume_row.measure = consume_row.records_per_s
        rows.append(consume_row)
        result.groups.append(Group(f"Reading back {records:,} records of {label} "
                                   f"({_size_text(chunks)})", rows))
        result.raw[f"read_{size}"] = cmp.to_json()
        result.raw[f"consume_{size}"] = cmp2.to_json()
    result.notes.append(
        "The views row measures fetch planning only (index lookup, batch walk, a memoryview "
        "slice): it hands out the bytes without touching them, as the design intends (no copy "
        "until records are decoded). The copy row is the like-for-like comparison with a raw "
        "read, which always copies. In its profile the copy (`buffer[:n] = view`, a memmove "
        "out of the segment's mmap) runs inline in the benchmark's loop, so cProfile books it to "
        "the benchmark loop; perf shows it as libc's memmove.")
    return result


def _size_text(chunks: list[int]) -> str:
    return f"{sum(chunks) / MB:.0f} MB in {len(chunks)} reads"


def build_log(ctx: Context, size: int, log_bytes: int) -> tuple[Log, list[int], int]:
    """A log of about log_bytes from the shared records, reopened; the Log.read chunk sizes."""
    path = ctx.path(f"read-{size}")
    batch_bytes = size * RECORDS_PER_BATCH
    with Log.open(path) as log:
        for i in range(max(1, log_bytes // batch_bytes)):
            log.append(ctx.records.batch(size, i))
    log = Log.open(path)
    chunks = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        r = log.read(offset, FETCH_BYTES)
        chunks.append(len(r.records))
        offset = r.next_offset
    return log, chunks, log.log_end_offset - log.log_start_offset


def log_cases(log: Log, records: int, size: int, chunks: list[int]) -> tuple[Case, Case, Case]:
    units = {"records": records, "bytes": records * size}
    buffer = bytearray(max(chunks))

    def views(state, n: int) -> None:
        read = log.read
        for _ in range(n):
            offset, end = log.log_start_offset, log.log_end_offset
            while offset < end:
                offset = read(offset, FETCH_BYTES).next_offset

    def copies(state, n: int) -> None:
        read = log.read
        for _ in range(n):
            offset, end = log.log_start_offset, log.log_end_offset
            while offset < end:
                r = read(offset, FETCH_BYTES)
                view = r.records
                buffer[:len(view)] = view
                offset = r.next_offset

    def consume(state, n: int) -> None:
        read = log.read
        for _ in range(n):
            offset, end = log.log_start_offset, log.log_end_offset
            count = 0
            while offset < end:
                r = read(offset, FETCH_BYTES)
                for batch in r.batches():
                    count += len(batch.records())
                offset = r.next_offset
            assert count == records, (count, records)

    return (Case("logstore Log.read (views)", views, units),
            Case("logstore Log.read + copy", copies, units),
            Case("logstore Log.read + records()", consume, units))


def raw_case(log: Log, chunks: list[int], records: int, size: int) -> Case:
    """f.readinto the .log files in the same chunk sizes (a chunk never spans two files)."""
    files = sorted(glob.glob(os.path.join(log.directory, "*.log")))
    buffer = memoryview(bytearray(max(chunks)))
    plan = _plan(files, chunks)

    def run(state, n: int) -> None:
        for _ in range(n):
            for path, sizes in plan:
                with open(path, "rb", buffering=0) as f:
                    readinto = f.readinto
                    for chunk in sizes:
                        readinto(buffer[:chunk])

    return Case("raw f.readinto", run, {"records": records, "bytes": records * size})


def _plan(files: list[str], chunks: list[int]) -> list[tuple[str, list[int]]]:
    plan = []
    it = iter(chunks)
    for path in files:
        left = os.path.getsize(path)
        sizes = []
        while left > 0:
            chunk = next(it)
            sizes.append(chunk)
            left -= chunk
        plan.append((path, sizes))
    return plan


def _row(cmp, subject: str, limit: str, label: str, target, case: Case | None = None,
         baseline: Case | None = None) -> Row:
    return comparison_row(cmp, subject, limit, label, DURABILITY, target=target,
                          profile=(case, baseline) if case is not None else None, cpu=True)
