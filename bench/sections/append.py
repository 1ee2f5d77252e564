"""Section `append`: buffered appends against the raw buffered limit.

Per record size (100 B and 1 KiB values, batches of 1000 records):
- `Log.append(values)` (records encoded in C into a per-thread scratch buffer, one pwrite per
  batch) vs `f.write(b"".join(batch))` per batch, with the naive per-record `f.write` loop as a
  second reference; target >= 0.9x of the join+write limit.
- `Log.append_batch` of pre-built batches (the storage engine alone: offset patch, index
  entries, one pwrite) vs `f.write` of the same batch bytes; once with validate=False (what the
  embedded producer does) and once with the default validate=True (Kafka's client-append checks:
  CRC, sizes, records decoded).
"""

from __future__ import annotations

from logstore import record_batch

from bench import _cases
from bench._report import Group, Row, Target, comparison_row
from bench._section import Context, new_result, section
from bench._timer import compare

NAME = "append"
TARGET = Target("ratio", 0.9)


@section(NAME, "1. append: buffered appends vs the raw buffered limit", order=10,
         weight_quick=8, weight_full=110)
def run(ctx: Context):
    result = new_result(NAME)
    result.intro = (
        "Batches of 1000 records, values of 100 B and 1 KiB (random, incompressible), no keys "
        "or headers. Every round writes a fresh file / log directory and deletes it afterwards "
        "without syncing, so the figures measure the CPU and page-cache path of subject and "
        "limit alike (no round reaches the kernel's writeback threshold). The limit is the "
        "strongest simple Python program that writes the same records: one `f.write` of "
        "`b''.join(batch)` per batch. `MB/s` counts value bytes; logstore also writes its "
        "framing (61 B per batch, ~8–10 B per record).")
    steps = ctx.steps(5)
    for size in (100, 1024):
        label = f"{size} B" if size < 1024 else "1 KiB"
        subject = _cases.log_append(ctx, size)
        limit = _cases.raw_join_write(ctx, size)
        naive = _cases.raw_per_record_write(ctx, size)
        cmp = compare([subject, limit, naive], ctx.settings,
                      on_round=steps.sub(f"Log.append {label}"))
        steps.finish()
        rows = [
            _row(cmp, subject.name, limit.name, f"Log.append, 1000 × {label}", TARGET,
                 profile=(subject, limit)),
            _row(cmp, naive.name, limit.name, f"raw f.write per record, {label} "
                 "(second reference)", None),
            _row(cmp, limit.name, limit.name, f"raw join+write, {label} (the limit)", None),
        ]
        rows.append(Row(f"Log.append vs the per-record loop, {label}",
                        _cases.DURABILITY_BUFFERED, ratio=cmp.ratio(subject.name, naive.name),
                        limit=naive.name, cpu_ratio=cmp.cpu_ratio(subject.name, naive.name)))
        result.groups.append(Group(f"Log.append, {label} values", rows))
        result.raw[f"append_{size}"] = cmp.to_json()

        batches = [record_batch.build_batch(values) for values in ctx.records.pools[size]]
        chunks = [bytes(b) for b in batches]
        fast = _cases.log_append_batch(ctx, size, batches, validate=False,
                                       name="logstore Log.append_batch(validate=False)")
        checked = _cases.log_append_batch(ctx, size, batches, validate=True,
                                          name="logstore Log.append_batch(validate=True)")
        raw = _cases.raw_write_chunks(ctx, size, chunks, "raw f.write of the same batch bytes")
        cmp2 = compare([fast, checked, raw], ctx.settings,
                       on_round=steps.sub(f"Log.append_batch {label}"))
        steps.finish()
        result.groups.append(Group(f"Log.append_batch of pre-built batches, {label} values "
                                   f"(batch of {len(chunks[0]):,} B on disk)", [
            _row(cmp2, fast.name, raw.name, f"Log.append_batch(validate=False), {label}",
                 None, note="the storage engine's own overhead"),
            _row(cmp2, checked.name, raw.name, f"Log.append_batch(validate=True), {label}",
                 None, note="plus Kafka's append-time checks (CRC, records decoded)"),
            _row(cmp2, raw.name, raw.name, f"raw f.write of the same bytes, {label}", None),
        ]))
        result.raw[f"append_batch_{size}"] = cmp2.to_json()
    fixed_cost(ctx, result, steps)
    return result


def fixed_cost(ctx: Context, result, steps) -> None:
    """One record per append against one f.write per record: logstore's per-append cost that
    does not depend on the number of records, which 1000-record batches amortise."""
    size = 100
    single = _cases.log_put_single(ctx, size, durable=False, name="logstore Log.append([v])")
    raw = _cases.raw_write_chunks(ctx, size, ctx.records.singles(size),
                                  "raw f.write per record", records=1)
    # same_work=False: f.write of 100 B is ~200x faster; the same count would take minutes.
    cmp = compare([single, raw], ctx.settings_with(min_iterations=ctx.pick(500, 2000)),
                  same_work=False, on_round=steps.sub("one record per append"))
    steps.finish()
    result.raw["append_single_100"] = cmp.to_json()
    result.groups.append(Group("One record per append (the fixed cost per append), 100 B", [
        _row(cmp, single.name, raw.name, "Log.append([v]), 100 B", None),
        _row(cmp, raw.name, raw.name, "raw f.write per record, 100 B (buffered file object)",
             None),
    ]))
    ours = 1e6 / cmp[single.name].rate("records")
    theirs = 1e6 / cmp[raw.name].rate("records")
    batch = result.raw.get("append_100", {}).get("cases", {})
    per_batch = ""
    if batch:
        log_s = _per_iteration(batch["logstore Log.append"])
        raw_s = _per_iteration(batch["raw join+write"])
        per_batch = (f" A batch of 1000 × 100 B took {log_s * 1e6:.0f} µs in Log.append and "
                     f"{raw_s * 1e6:.0f} µs in the join+write limit: the fixed part explains "
                     f"{min(100.0, ours / max(1e-9, (log_s - raw_s) * 1e6) * 100):.0f}% of "
                     f"the difference, the rest is per record (C encoding: varints, copy, CRC; "
                     f"see the profile below).")
    result.notes.append(
        f"**Fixed cost per append.** One record per append costs {ours:.1f} µs in logstore "
        f"(Python-level work done once per batch: argument checks, header build and parse, "
        f"lock, offset assignment, roll check, index bookkeeping, one pwrite, the AppendInfo) "
        f"against {theirs:.2f} µs for a buffered f.write.{per_batch}")


def _per_iteration(case: dict) -> float:
    seconds = sorted(case["seconds"])
    return seconds[len(seconds) // 2] / case["iterations"]


def _row(cmp, subject: str, limit: str, label: str, target: Target | None,
         profile=None, note: str = "") -> Row:
    return comparison_row(cmp, subject, limit, label, _cases.DURABILITY_BUFFERED,
                          target=target, profile=profile, cpu=True, note=note)
