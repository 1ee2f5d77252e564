"""`make bench` / `logstore bench`: run the benchmark sections and write the report.

    python -m bench.run [--quick] [--sections a,b] [--out DIR] [--tmp DIR] [--no-profile]

Writes DIR/REPORT.md (summary, headline table, per-section tables, MISS explanations, plots),
DIR/results.json (every raw number) and DIR/*.png. Benchmark data goes to a temporary directory
on the repository's file system and is deleted afterwards, also on Ctrl-C.

Sections live in bench/sections/ (see bench/_section.py); each measures logstore against
baselines in the same run with the one shared timer (bench/_timer.py).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time
import traceback

if __package__ in (None, ""):                     # run as a script: python bench/run.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _env, _plot, _profile  # noqa: E402
from bench._progress import Progress  # noqa: E402
from bench._report import SectionResult, explain_miss, write_json, write_report  # noqa: E402
from bench._section import SECTIONS, Context, Records  # noqa: E402
from bench._timer import Settings  # noqa: E402

DEFAULT_OUT = os.path.join(_env.REPO_ROOT, "bench", "results")
QUICK_SETTINGS = Settings(rounds=3, min_wall_s=0.08, min_iterations=3)
FULL_SETTINGS = Settings(rounds=7, min_wall_s=0.6, min_iterations=5)
PROFILE_ITERATIONS_CAP = {"quick": 300, "full": 2000}


def load_sections() -> None:
    import bench.sections as package
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    load_sections()
    names = sorted(SECTIONS, key=lambda n: SECTIONS[n].order)
    parser = argparse.ArgumentParser(
        prog="logstore bench", description="Benchmark logstore against raw-file and peer "
        "baselines measured in the same run; writes REPORT.md, results.json and PNG plots.")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and short rounds (about a minute in total)")
    parser.add_argument("--sections", default=",".join(names), metavar="A,B",
                        help=f"comma-separated sections to run (default all: {','.join(names)})")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help="where REPORT.md, results.json and the plots go "
                             "(default bench/results)")
    parser.add_argument("--tmp", default=None, metavar="DIR",
                        help="parent directory for benchmark data (default: next to the "
                             "checkout, on the same file system); deleted afterwards")
    parser.add_argument("--no-profile", action="store_true",
                        help="do not profile MISSes (faster, but the report then cannot say "
                             "where the time goes)")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    args.chosen = sorted(set(chosen), key=lambda n: SECTIONS[n].order)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    os.makedirs(args.out, exist_ok=True)
    for name in os.listdir(args.out):        # plots of an earlier run would be misleading
        if name.endswith(".png"):
            os.unlink(os.path.join(args.out, name))
    started = time.monotonic()
    root = _env.data_root(args.tmp)
    env = {"machine": _env.machine(), "filesystem": _env.mount_of(args.out),
           "data_filesystem": _env.mount_of(root), "data_dir": root,
           "free_bytes_before": _env.free_bytes(root),
           "python_probe_cpu_s": _env.python_speed_probe()}
    weights = {n: (SECTIONS[n].weight_quick if args.quick else SECTIONS[n].weight_full)
               for n in args.chosen}
    progress = Progress(weights)
    records = Records()
    results: list[SectionResult] = []
    mode = "quick" if args.quick else "full"
    try:
        for name in args.chosen:
            results.append(run_section(name, args, root, records, progress))
            _write(args, env, results, mode, time.monotonic() - started)
    except KeyboardInterrupt:
        progress.close()
        print("logstore bench: interrupted; the report has the sections that finished",
              file=sys.stderr)
        return 130
    finally:
        progress.close()
        _env.remove(root)
    wall = time.monotonic() - started
    _write(args, env, results, mode, wall, final=True)
    report = os.path.join(args.out, "REPORT.md")
    misses = sum(1 for r in results for row in r.rows() if row.status == "MISS")
    passes = sum(1 for r in results for row in r.rows() if row.status == "PASS")
    failed = [r.name for r in results if r.error]
    print(f"logstore bench: {passes} PASS, {misses} MISS in {wall / 60:.1f} min; report: "
          f"{report}" + (f"; FAILED sections: {', '.join(failed)}" if failed else ""),
          file=sys.stderr)
    return 1 if failed else 0


def run_section(name: str, args, root: str, records: Records, progress: Progress
                ) -> SectionResult:
    spec = SECTIONS[name]
    data_dir = os.path.join(root, name)
    os.makedirs(data_dir, exist_ok=True)
    ctx = Context(quick=args.quick, settings=QUICK_SETTINGS if args.quick else FULL_SETTINGS,
                  data_dir=data_dir, out_dir=args.out, records=records, progress=progress,
                  profile_misses=not args.no_profile)
    progress.begin(name)
    start = time.monotonic()
    load_start = os.getloadavg()[0]
    try:
        result = spec.run(ctx)
        if ctx.profile_misses:
            progress.update(0.99, "profiling misses")
            explain_misses(result, ctx)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - one failed section must not lose the others
        result = SectionResult(name=spec.name, title=spec.title,
                               error=f"{type(exc).__name__}: {exc}")
        progress.note(f"logstore bench: section {name} failed:\n{traceback.format_exc()}")
    finally:
        for cleanup in reversed(ctx.cleanups):
            try:
                cleanup()
            except Exception:  # noqa: BLE001 - the data directory goes anyway
                pass
        _env.remove(data_dir)
    result.seconds = time.monotonic() - start
    result.raw["loadavg_1min"] = {"start": load_start, "end": os.getloadavg()[0]}
    result.raw["pressure_avg60_end"] = _env.pressure()
    progress.end(name)
    return result


def explain_misses(result: SectionResult, ctx: Context) -> None:
    perf_note = "skipped in quick mode" if ctx.quick else "" if _profile.perf_available() else \
        "not available here (perf missing or perf_event_paranoid too strict)"
    for row in result.rows():
        if row.status != "MISS" or row.profile is None:
            continue
        subject, baseline, iterations = row.profile
        cap = PROFILE_ITERATIONS_CAP["quick" if ctx.quick else "full"]
        iterations = max(1, min(iterations, cap))
        profiles = _profile.cprofile_cases([c for c in (subject, baseline) if c], iterations)
        sub, base = profiles[0], (profiles[1] if baseline is not None else None)
        perf = None if ctx.quick else _profile.perf_case(subject, iterations)
        note = perf_note or ("" if perf else "perf recorded no usable samples")
        result.explanations.append(explain_miss(row, sub, base, perf, note))
        result.raw.setdefault("profiles", []).append(
            {"row": row.name, "subject": sub.to_json(),
             "baseline": base.to_json() if base else None,
             "perf": perf.to_json() if perf else None})


def _write(args, env: dict, results: list[SectionResult], mode: str, wall: float,
           final: bool = False) -> None:
    summary = summary_plot(args.out, results) if final else None
    write_report(os.path.join(args.out, "REPORT.md"), env, results, mode, wall, summary)
    write_json(os.path.join(args.out, "results.json"), env, results, mode, wall)


def summary_plot(out: str, results: list[SectionResult]) -> str | None:
    """One bar per ratio with a target; the file name, or None when there is none."""
    items = []
    for r in results:
        for row in r.rows():
            if row.ratio is not None and row.target is not None and row.target.kind == "ratio":
                items.append((f"{r.name}: {row.name}", row.ratio.median, row.ratio.low,
                              row.ratio.high, row.target.value))
    if not items:
        return None
    return _plot.ratio_bars(os.path.join(out, "summary_ratios.png"),
                            "Ratios with a target (median, min–max over rounds)", items)


if __name__ == "__main__":
    sys.exit(main())
