"""The report's building blocks: figures (rows with a ratio and a target), tables, sections, and
the writers for REPORT.md and results.json.

A figure row always names its limit (the baseline it is divided by, measured in the same run),
the durability of what was measured, and, where the issue sets one, a target and PASS/MISS. PASS
and MISS are decided on the median over rounds; the spread is printed next to it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from bench import _env
from bench._profile import PerfProfile, Profile
from bench._timer import Comparison, Ratio

MB = 1e6                      # report units are decimal: MB/s and GB/s
GB = 1e9


@dataclass
class Target:
    """`ratio`: the row's median ratio must be >= value. `absolute`: the row's `measure` (a
    number in `unit`, e.g. GB/s or records/s) must be >= value."""

    kind: str
    value: float
    unit: str = "×"

    def text(self) -> str:
        if self.kind == "ratio":
            return f"≥ {self.value:g}×"
        return f"≥ {fmt_count(self.value) if self.unit == 'records/s' else f'{self.value:g}'} " \
               f"{self.unit}"


@dataclass
class Row:
    name: str
    durability: str
    records_per_s: float | None = None
    mb_per_s: float | None = None
    ratio: Ratio | None = None
    limit: str = ""
    target: Target | None = None
    measure: float | None = None          # for absolute targets, in target.unit
    note: str = ""
    # The same ratio by CPU time of this process (CPU-bound rows only): blind to other processes
    # taking the cores, which on a shared machine slow the CPU-heavy side more.
    cpu_ratio: Ratio | None = None
    # (subject case, baseline case or None, iterations) to profile when the row misses
    profile: tuple[Case, Case | None, int] | None = None

    @property
    def status(self) -> str:
        if self.target is None:
            return ""
        if self.target.kind == "ratio":
            ok = self.ratio is not None and self.ratio.median >= self.target.value
        else:
            ok = self.measure is not None and self.measure >= self.target.value
        return "PASS" if ok else "MISS"

    def to_json(self) -> dict:
        return {"name": self.name, "durability": self.durability,
                "records_per_s": self.records_per_s, "mb_per_s": self.mb_per_s,
                "ratio": self.ratio.to_json() if self.ratio else None, "limit": self.limit,
                "cpu_ratio": self.cpu_ratio.to_json() if self.cpu_ratio else None,
                "target": self.target.text() if self.target else None,
                "measure": self.measure, "status": self.status or None, "note": self.note}


def comparison_row(cmp: Comparison, subject: str, limit: str, label: str, durability: str, *,
                   target: Target | None = None, profile: tuple | None = None,
                   cpu: bool = False, note: str = "") -> Row:
    """The figure row of `subject` in a comparison: its rates, its ratio to `limit` (the same
    run), and, for CPU-bound rows (cpu=True), the ratio by CPU time. profile: the (subject,
    baseline) cases to profile if the row misses, for as many iterations as a round had."""
    case = cmp[subject]
    return Row(label, durability, case.rate("records"), case.rate("bytes") / MB,
               cmp.ratio(subject, limit), limit, target, note=note,
               profile=(profile[0], profile[1], case.iterations) if profile else None,
               cpu_ratio=cmp.cpu_ratio(subject, limit) if cpu and subject != limit else None)


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[Any]]

    def markdown(self) -> str:
        head = "| " + " | ".join(self.columns) + " |"
        rule = "|" + "|".join("---" for _ in self.columns) + "|"
        body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in self.rows]
        caption = f"**{self.caption}**\n\n" if self.caption else ""
        return caption + "\n".join([head, rule, *body])

    def to_json(self) -> dict:
        return {"caption": self.caption, "columns": self.columns, "rows": self.rows}


@dataclass
class Group:
    """Figure rows that were measured together (one comparison), with a caption."""

    caption: str
    rows: list[Row]


@dataclass
class SectionResult:
    name: str
    title: str
    intro: str = ""
    groups: list[Group] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: list[tuple[str, str]] = field(default_factory=list)     # (file name, caption)
    notes: list[str] = field(default_factory=list)
    explanations: list[str] = field(default_factory=list)
    raw: dict = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""

    def rows(self) -> list[Row]:
        return [row for group in self.groups for row in group.rows]


# ------------------------------------------------------------------------------------------------
# Formatting


def fmt_count(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    for limit, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= limit:
            return f"{x / limit:.3g}{suffix}"
    return f"{x:.3g}"


def fmt_num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def fmt_us(ns: float | None) -> str:
    if ns is None or math.isnan(ns):
        return "–"
    return f"{ns / 1000:.1f} µs" if ns < 1e7 else f"{ns / 1e6:.1f} ms"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return fmt_num(value)
    return str(value).replace("|", "\\|")


FIGURE_COLUMNS = ["Case", "Durability", "records/s", "MB/s", "Ratio to limit (min–max)",
                  "Limit (same run)", "Target", "Result", "Ratio by CPU time"]


def figure_table(rows: list[Row], caption: str = "") -> Table:
    return Table(caption, FIGURE_COLUMNS, [_figure_cells(row) for row in rows])


def headline_table(rows: list[tuple[str, Row]]) -> Table:
    """Every (section, row) with a target, in one table."""
    return Table("", ["Section"] + FIGURE_COLUMNS,
                 [[section] + _figure_cells(row) for section, row in rows])


def _figure_cells(row: Row) -> list[str]:
    return [row.name + (f" — *{row.note}*" if row.note else ""), row.durability,
            fmt_count(row.records_per_s), fmt_num(row.mb_per_s),
            row.ratio.text() if row.ratio else "–", row.limit or "–",
            row.target.text() if row.target else "–", _status_cell(row),
            row.cpu_ratio.text() if row.cpu_ratio else "–"]


def _status_cell(row: Row) -> str:
    status = row.status
    if not status:
        return "–"
    if row.target and row.target.kind == "absolute" and row.measure is not None:
        shown = fmt_count(row.measure) if row.target.unit == "records/s" else \
            f"{row.measure:.3g}"
        return f"**{status}** ({shown} {row.target.unit})"
    return f"**{status}**"


# ------------------------------------------------------------------------------------------------
# MISS explanations


def explain_miss(row: Row, subject: Profile, baseline: Profile | None,
                 perf: PerfProfile | None, perf_note: str) -> str:
    """A paragraph naming where the subject's time goes, from its profile (and the baseline's)."""
    what = (f"{row.ratio.median:.2f}× of {row.limit}" if row.ratio is not None and
            row.target and row.target.kind == "ratio" else
            f"{row.measure:.3g} {row.target.unit}" if row.target and row.measure is not None
            else "below target")
    lines = [f"**Why {row.name} misses ({what}; target {row.target.text()}).** "
             f"cProfile, per iteration, over {subject.iterations} iterations (cProfile adds "
             f"about 0.1–0.5 µs to every profiled Python call, so Python-level shares are "
             f"inflated; C calls and system calls are timed exactly):"]
    lines.append(f"- subject *{subject.case}*: {subject.us_per_iteration:.1f} µs — "
                 + _categories(subject.categories))
    if baseline is not None:
        lines.append(f"- limit *{baseline.case}*: {baseline.us_per_iteration:.1f} µs — "
                     + _categories(baseline.categories))
        gap = {k: subject.categories.get(k, 0.0) - baseline.categories.get(k, 0.0)
               for k in set(subject.categories) | set(baseline.categories)}
        extra = sorted(((v, k) for k, v in gap.items() if v > 0.05 * max(
            1e-9, subject.us_per_iteration)), reverse=True)
        if extra:
            lines.append("- the extra time per iteration is in: " + ", ".join(
                f"{k} (+{v:.1f} µs)" for v, k in extra))
    lines.append("- top functions of the subject by own time: " + ", ".join(
        f"`{e.name}` {e.us_per_iteration:.1f} µs ({e.share * 100:.0f}%)"
        for e in subject.entries[:6]))
    if perf is not None:
        lines.append(f"- perf ({perf.samples} samples of the subject loop, no profiler "
                     "overhead): " + ", ".join(f"{k} {v:.0f}%" for k, v in perf.groups.items()
                                               if v >= 1)
                     + "; top symbols: " + ", ".join(
                         f"`{s}` ({d.split('.')[0]}) {p:.1f}%" for p, d, s in perf.symbols[:6]))
    elif perf_note:
        lines.append(f"- perf: {perf_note}")
    return "\n".join(lines)


def _categories(categories: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f} µs" for k, v in categories.items() if v >= 0.05)


# ------------------------------------------------------------------------------------------------
# Writers


def durability_glossary() -> str:
    return (
        "Durability, as stated on every row: **buffered** = written to the page cache with "
        "write/pwrite and no fsync (Kafka's default: survives a crash of the process, kill -9, "
        "but not of the OS or a power loss); **fdatasync/batch** and **fdatasync/message** = "
        "each append returns only after fdatasync of the data (survives power loss, as far as "
        "the device honours flushes); **SQLite WAL FULL** = the WAL is fsynced at every commit "
        "(durable per commit); **SQLite WAL NORMAL** = commits are not synced, the WAL is synced "
        "only at checkpoints (survives a process crash, not a power loss); persist-queue's "
        "durability is stated on its rows.")


def summary_paragraph(env: dict, mode: str, wall_s: float, sections: list[str]) -> str:
    m = env["machine"]
    fs = env["filesystem"]
    dirty = m["dirty"]
    return (
        f"Run of {m['time']} ({mode} mode, sections {', '.join(sections)}; wall time "
        f"{wall_s / 60:.1f} min) on **{m['cpu']}**, {m['cores']} cores, "
        f"{_env.human_bytes(m['ram_bytes'])} RAM, Linux {m['kernel']}; data on "
        f"**{fs['fstype']}** ({fs['device']} mounted at {fs['mount_point']}, options "
        f"`{fs['options']}`), {_env.human_bytes(env['free_bytes_before'])} free before the run; "
        f"{m['python_implementation']} {m['python']} (speed probe: a 10-million-iteration "
        f"`x += i` loop took {env.get('python_probe_cpu_s', float('nan')):.2f} s of CPU); "
        f"logstore at git {m['git']}. Page-cache "
        f"writeback starts at {dirty.get('dirty_background_ratio', '?')}% of RAM dirty "
        f"(≈ {_env.human_bytes(_env.dirty_background_bytes())}) and throttles writers at "
        f"{dirty.get('dirty_ratio', '?')}%. Every ratio divides the subject by a baseline "
        f"measured in the same run, interleaved round by round (A B, B A, …); figures are "
        f"medians over rounds with the min–max of the per-round ratios in brackets; PASS/MISS "
        f"uses the median. The last column repeats the ratio by CPU time of this process (user + "
        f"sys) for CPU-bound rows: other processes taking the cores (see each section's load "
        f"and pressure figures) slow the CPU-heavy side of a comparison more than the other, "
        f"and CPU time does not see that; it is for reading, PASS/MISS stays on wall time. "
        f"MB/s counts record payload bytes (values), 1 MB = 10^6 B; GB/s for "
        f"scans counts file bytes, 1 GB = 10^9 B. " + durability_glossary())


def write_report(path: str, env: dict, results: list[SectionResult], mode: str,
                 wall_s: float, summary_png: str | None = None) -> None:
    parts = ["# logstore benchmark report", "",
             summary_paragraph(env, mode, wall_s, [r.name for r in results]), ""]
    headline = [(r.name, row) for r in results for row in r.rows() if row.target is not None]
    if headline:
        misses = sum(1 for _, row in headline if row.status == "MISS")
        parts += ["## Headline: every figure with a target", "",
                  f"{len(headline) - misses} PASS, {misses} MISS. Each MISS is explained, from a "
                  "profile, in its section.", "",
                  headline_table(headline).markdown(), ""]
        if summary_png:
            parts += [f"![Every ratio with a target]({summary_png})", "",
                      "*Every ratio with a target: median and min–max over rounds; red = MISS, "
                      "black tick = the target.*", ""]
    for r in results:
        parts += [f"## {r.title}", ""]
        if r.error:
            parts += [f"**This section failed:** `{r.error}`", ""]
        if r.intro:
            parts += [r.intro, ""]
        for group in r.groups:
            parts += [figure_table(group.rows, group.caption).markdown(), ""]
        for table in r.tables:
            parts += [table.markdown(), ""]
        for note in r.notes:
            parts += [note, ""]
        if r.explanations:
            parts += ["### Where the time goes (MISS explanations)", ""]
            for text in r.explanations:
                parts += [text, ""]
        for file_name, caption in r.plots:
            parts += [f"![{caption}]({file_name})", "", f"*{caption}*", ""]
        load = r.raw.get("loadavg_1min")
        psi = r.raw.get("pressure_avg60_end") or {}
        load_text = (f"; 1-min load average {load['start']:.1f} at the start, {load['end']:.1f}"
                     f" at the end" if load else "")
        if psi:
            load_text += ("; over the last minute some task waited for the CPU "
                          f"{psi.get('cpu', float('nan')):.0f}% and for I/O "
                          f"{psi.get('io', float('nan')):.0f}% of the time (Linux PSI)")
        parts += [f"<sub>section wall time {r.seconds:.0f} s{load_text}</sub>", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))


def write_json(path: str, env: dict, results: list[SectionResult], mode: str,
               wall_s: float) -> None:
    doc = {"mode": mode, "wall_s": wall_s, "env": env,
           "sections": {r.name: {"title": r.title, "seconds": r.seconds, "error": r.error,
                                 "figures": [row.to_json() for row in r.rows()],
                                 "tables": [t.to_json() for t in r.tables],
                                 "plots": [p for p, _ in r.plots], "raw": r.raw}
                        for r in results}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, default=_json_default)


def _json_default(value):
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return str(value)
