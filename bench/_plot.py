"""PNG plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 110
LABEL_WIDTH = 38          # characters per line of a bar label


def lines(path: str, title: str, xlabel: str, ylabel: str, series: dict[str, tuple[list, list]],
          *, logx: bool = False, logy: bool = False, ylim_zero: bool = True,
          note: str = "") -> str:
    """One line per series {label: (xs, ys)}; returns the file's base name."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", markersize=3.5, label=label)
    if logx:
        ax.set_xscale("log", base=2 if all(x > 0 for s in series.values() for x in s[0])
                      else 10)
    if logy:
        ax.set_yscale("log")
    elif ylim_zero:
        ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, alpha=0.7)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return os.path.basename(path)


def ratio_bars(path: str, title: str, items: list[tuple[str, float, float, float, float | None]]
               ) -> str:
    """Horizontal bars of ratios: (label, median, low, high, target or None)."""
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(items) + 1.4))
    labels = [textwrap.fill(i[0], LABEL_WIDTH) for i in items][::-1]
    medians = [i[1] for i in items][::-1]
    lows = [i[1] - i[2] for i in items][::-1]
    highs = [i[3] - i[1] for i in items][::-1]
    colors = ["tab:green" if (t is None or m >= t) else "tab:red"
              for (_, m, _, _, t) in items][::-1]
    ys = range(len(items))
    ax.barh(list(ys), medians, xerr=[lows, highs], color=colors, alpha=0.8, capsize=3)
    for y, (_, _, _, _, target) in zip(ys, items[::-1]):
        if target is not None:
            ax.plot([target, target], [y - 0.4, y + 0.4], color="black", linewidth=1.5)
    ax.set_yticks(list(ys))
    ax.set_yticklabels(labels, fontsize=7.5)
    ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("ratio to the limit measured in the same run (black tick: target)")
    ax.set_title(title, fontsize=11)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return os.path.basename(path)
