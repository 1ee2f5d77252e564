"""Section `durable`: appends that return only once fdatasync'ed, against raw write+fdatasync.

- batches of 1000 records (100 B and 1 KiB): `Log.append(values, durable=True)` vs
  `os.write(fd, chunk); os.fdatasync(fd)` with chunks of the same payload size; target >= 0.9x;
- per-message durable puts (batch of 1): records/s and latency p50/p99/p99.9 for logstore and
  the raw loop (os.write of the one value + fdatasync); target >= 0.9x;
- group commit: N threads doing per-message durable appends, records/s vs N, against N threads
  doing os.write (under a lock, so appends do not interleave) + os.fdatasync each.
"""

from __future__ import annotations

import os

from bench import _cases, _plot, _profile
from bench._report import Group, Table, Target, comparison_row, fmt_count, fmt_us
from bench._section import Context, new_result, section
from bench._timer import compare

NAME = "durable"
TARGET = Target("ratio", 0.9)


@section(NAME, "2. durable: fdatasync per batch and per message, group commit", order=20,
         weight_quick=9, weight_full=120)
def run(ctx: Context):
    result = new_result(NAME)
    result.intro = (
        "Every append returns only after fdatasync of its data. The limits write the same "
        "payload with `os.write` and call `os.fdatasync` after each chunk (batch: the 1000 "
        "values joined; message: the one value). Both append to a fresh file that grows, so "
        "each sync also commits the file-size change, as logstore's do.")
    thread_counts = ctx.pick((1, 8), (1, 2, 4, 8, 16))
    steps = ctx.steps(3 + len(thread_counts))
    for size in (100, 1024):
        label = f"{size} B" if size < 1024 else "1 KiB"
        subject = _cases.log_append(ctx, size, durable=True,
                                    name="logstore Log.append(durable=True)")
        limit = _cases.raw_write_fdatasync(ctx, size, ctx.records.joined[size],
                                           "raw os.write+fdatasync per batch")
        cmp = compare([subject, limit], ctx.settings,
                      on_round=steps.sub(f"durable batches {label}"))
        steps.finish()
        result.groups.append(Group(f"Durable batches of 1000 × {label}", [
            comparison_row(cmp, subject.name, limit.name,
                           f"Log.append(durable=True), 1000 × {label}",
                           _cases.DURABILITY_FSYNC_BATCH, target=TARGET,
                           profile=(subject, limit)),
            comparison_row(cmp, limit.name, limit.name,
                           f"raw os.write+fdatasync per batch, {label} (the limit)",
                           _cases.DURABILITY_FSYNC_BATCH),
        ]))
        result.raw[f"durable_batch_{size}"] = cmp.to_json()

    result.groups.append(per_message(ctx, result, steps))
    result.tables.append(group_commit(ctx, result, steps, thread_counts))
    return result


def per_message(ctx: Context, result, steps) -> Group:
    size = 100
    subject = _cases.log_put_single(ctx, size, durable=True,
                                    name="logstore Log.append([v], durable=True)")
    limit = _cases.raw_write_fdatasync(ctx, size, ctx.records.singles(size),
                                       "raw os.write+fdatasync per message", records=1,
                                       latencies=True)
    settings = ctx.settings_with(min_iterations=ctx.pick(150, 1000))
    cmp = compare([subject, limit], settings, on_round=steps.sub("per-message durable"))
    steps.finish()
    result.raw["durable_message_100"] = cmp.to_json()
    s, b = cmp[subject.name], cmp[limit.name]
    result.tables.append(Table(
        "Per-message durable puts (100 B): latency of each put, all rounds pooled", [
            "Case", "Durability", "puts", "p50", "p90", "p99", "p99.9", "max"],
        [[c.name, _cases.DURABILITY_FSYNC_MESSAGE, len(c.latencies_ns),
          *(fmt_us(c.percentile_ns(q)) for q in (50, 90, 99, 99.9, 100))] for c in (s, b)]))
    latency_plot(ctx, result, s, b)
    return Group("Per-message durable puts (batch of 1), 100 B", [
        comparison_row(cmp, subject.name, limit.name, "Log.append([v], durable=True), 100 B",
                       _cases.DURABILITY_FSYNC_MESSAGE, target=TARGET,
                       profile=(subject, limit)),
        comparison_row(cmp, limit.name, limit.name,
                       "raw os.write+fdatasync per message, 100 B (the limit)",
                       _cases.DURABILITY_FSYNC_MESSAGE),
    ])


def latency_plot(ctx: Context, result, subject, limit) -> None:
    series = {}
    for case in (subject, limit):
        ordered = sorted(case.latencies_ns)
        count = len(ordered)
        qs = [i / 200 for i in range(1, 200)] + [0.999, 0.9999]
        series[case.name] = ([q * 100 for q in qs],
                             [ordered[min(count - 1, int(q * count))] / 1000 for q in qs])
    name = _plot.lines(os.path.join(ctx.out_dir, "durable_latency.png"),
                       "Per-message durable put latency (100 B)", "percentile",
                       "latency (µs)", series, logy=True)
    result.plots.append((name, "Latency percentiles of per-message durable puts, logstore vs "
                               "the raw os.write+fdatasync loop (log scale)"))


def group_commit(ctx: Context, result, steps, thread_counts) -> Table:
    size = 100
    rows = []
    xs, ours, raws = [], [], []
    settings = ctx.settings_with(min_iterations=ctx.pick(100, 600))
    for threads in thread_counts:
        subject = _cases.log_group_commit(ctx, size, threads)
        limit = _cases.raw_group_commit(ctx, size, threads)
        cmp = compare([subject, limit], settings, on_round=steps.sub(f"{threads} threads"))
        steps.finish()
        ratio = cmp.ratio(subject.name, limit.name)
        s, b = cmp[subject.name].rate("records"), cmp[limit.name].rate("records")
        rows.append([threads, fmt_count(s), fmt_count(b), ratio.text()])
        xs.append(threads)
        ours.append(s)
        raws.append(b)
        result.raw[f"group_commit_{threads}"] = cmp.to_json()
    ceiling = gil_ceiling(ctx, result, size)
    rows.append(["ceiling: Log.append([v]) buffered, 1 thread", fmt_count(ceiling), "–", "–"])
    result.notes.append(
        "**Group commit and the GIL.** Every durable append runs its Python-level work (batch "
        "build, header parse, lock, offsets, index, flush bookkeeping) holding the GIL, so the "
        "appends of N threads cannot overlap it; only the fdatasync (and the C calls) release "
        f"it. A buffered `Log.append([v])` loop in one thread reaches {fmt_count(ceiling)} "
        "appends/s here: no thread count can exceed that, fsync or not; the best thread "
        f"count reached {max(ours) / ceiling * 100:.0f}% of it. Each finished sync wakes every "
        "waiting thread (Condition.notify_all), and each must take the GIL back in turn. The "
        "raw loop spends a microsecond or two of Python per record, and the kernel already "
        "merges concurrent fdatasyncs of one file into one journal commit."
        + profile_note(ctx, thread_counts[-1]))
    name = _plot.lines(os.path.join(ctx.out_dir, "durable_group_commit.png"),
                       "Group commit: per-message durable appends from N threads (100 B)",
                       "threads", "records/s", {"logstore Log.append([v], durable=True)":
                                                (xs, ours),
                                                "raw os.write (locked) + os.fdatasync":
                                                (xs, raws),
                                                "ceiling: buffered Log.append([v]), 1 thread":
                                                (xs, [ceiling] * len(xs))}, logx=True)
    result.plots.append((name, "Records/s of per-message durable appends vs the number of "
                               "threads; logstore shares one fdatasync among waiting threads"))
    return Table("Group commit: N threads, each appending one record per durable append "
                 f"({_cases.DURABILITY_FSYNC_MESSAGE}); limit: N threads doing os.write under "
                 "a lock + os.fdatasync",
                 ["threads", "logstore records/s", "raw records/s", "ratio (min–max)"], rows)


def gil_ceiling(ctx: Context, result, size: int) -> float:
    """Records/s of buffered one-record appends in one thread: the most any number of threads
    can get through logstore's Python-level append path in one process."""
    case = _cases.log_put_single(ctx, size, durable=False, name="logstore Log.append([v])")
    cmp = compare([case], ctx.settings_with(min_iterations=ctx.pick(500, 2000)))
    result.raw["gil_ceiling"] = cmp.to_json()
    return cmp[case.name].rate("records")


def profile_note(ctx: Context, threads: int) -> str:
    """perf of both sides at the largest thread count: where their CPU time goes."""
    if not ctx.profile_misses or ctx.quick:            # perf only in full mode
        return ""
    size = 100
    iterations = ctx.pick(300, 2000)
    parts = []
    for case in (_cases.log_group_commit(ctx, size, threads),
                 _cases.raw_group_commit(ctx, size, threads)):
        perf = _profile.perf_case(case, iterations)
        if perf is None:
            return ""
        parts.append(f"*{case.name}*: " + ", ".join(
            f"{k} {v:.0f}%" for k, v in perf.groups.items() if v >= 2) + "; top: " +
            ", ".join(f"`{sym}` {p:.0f}%" for p, _d, sym in perf.symbols[:4]))
    return (f" perf of {iterations} appends with {threads} threads (all threads sampled) — "
            + " — ".join(parts) + ".")
