"""Section `micro`: pytest-benchmark micro-benchmarks of the C calls, summarised.

Runs `pytest --benchmark-only bench/micro --benchmark-json=...` in a subprocess (the same
interpreter) and turns the JSON into one table: per group, each benchmark's median time and its
ratio to the group's baseline (the strongest simple alternative: the `crc32c` package, bisect,
b"".join, struct.iter_unpack...). pytest-benchmark runs the benchmarks one after another with
its own calibration, not interleaved: these ratios are noisier than the other sections'.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench import _env
from bench._report import Table, fmt_num
from bench._section import Context, new_result, section

NAME = "micro"
MICRO_DIR = os.path.join(_env.REPO_ROOT, "bench", "micro")


@section(NAME, "7. micro: the C calls (pytest-benchmark)", order=70, weight_quick=10,
         weight_full=60)
def run(ctx: Context):
    result = new_result(NAME)
    out = os.path.join(ctx.data_dir, "micro.json")
    timing = (["--benchmark-min-time=0.0002", "--benchmark-max-time=0.05",
               "--benchmark-min-rounds=5"] if ctx.quick else
              ["--benchmark-min-time=0.000005", "--benchmark-max-time=0.5",
               "--benchmark-min-rounds=10"])
    command = [sys.executable, "-m", "pytest", "--benchmark-only", MICRO_DIR,
               f"--benchmark-json={out}", "-q", "-p", "no:cacheprovider",
               "--benchmark-disable-gc", *timing]
    if ctx.progress:
        ctx.progress.update(0.05, "pytest --benchmark-only bench/micro")
    proc = subprocess.run(command, cwd=_env.REPO_ROOT, capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0 or not os.path.exists(out):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"pytest-benchmark failed (exit {proc.returncode}):\n{tail}")
    with open(out, encoding="utf-8") as f:
        doc = json.load(f)
    result.intro = (
        "`pytest --benchmark-only bench/micro` (pytest-benchmark "
        f"{doc.get('version', '?')}, GC disabled during timing). Each group has one baseline; "
        "`ratio` = baseline time ÷ benchmark time (> 1: faster than the baseline). "
        + __doc__.split("\n\n")[1].replace("\n", " ").split(": these ratios")[0] + ".")
    result.tables.append(summary_table(doc["benchmarks"]))
    result.raw["pytest_benchmark"] = [
        {"group": b.get("group"), "name": b["name"], "role": b["extra_info"].get("role"),
         "stats": {k: b["stats"][k] for k in ("min", "max", "mean", "median", "stddev",
                                              "rounds", "iterations", "ops")}}
        for b in doc["benchmarks"]]
    return result


def summary_table(benchmarks: list[dict]) -> Table:
    groups: dict[str, list[dict]] = {}
    for b in benchmarks:
        groups.setdefault(b.get("group") or "", []).append(b)
    rows = []
    for group, items in sorted(groups.items()):
        baseline = next((b for b in items if b["extra_info"].get("role") == "baseline"), None)
        for b in sorted(items, key=lambda b: b["stats"]["median"]):
            median = b["stats"]["median"]
            ratio = baseline["stats"]["median"] / median if baseline else None
            rows.append([group, _name(b), b["extra_info"].get("role", ""), _time(median),
                         fmt_num(1 / median if median else None),
                         f"{ratio:.2f}×" if ratio is not None else "–",
                         b["stats"]["rounds"]])
    return Table("C calls and their baselines (median per call)",
                 ["group", "benchmark", "role", "median", "calls/s", "ratio to baseline",
                  "rounds"], rows)


def _name(b: dict) -> str:
    name = b["name"].split("[", 1)[0]
    return name.removeprefix("test_")


def _time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.2f} µs"
