#!/usr/bin/env python3
"""Plots of a `vsense place-bench` report directory.

Reads DIR/place_bench.csv, DIR/layouts.csv and DIR/candidates.csv (written by place-bench) and
writes DIR/layouts.png (the sensors of every method on the candidate nodes, seen from above
and from the side) and DIR/metrics.png (each metric per method).

Usage: python3 benchmarks/place_plots.py DIR
Exit status 3 when matplotlib is missing (the message says how to install it).
"""
import csv
import math
import os
import sys


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = sys.argv[1]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("place_plots.py: matplotlib is not installed "
              "(Debian: apt-get install python3-matplotlib)", file=sys.stderr)
        return 3

    bench = read_csv(os.path.join(out_dir, "place_bench.csv"))
    layouts = read_csv(os.path.join(out_dir, "layouts.csv"))
    candidates = read_csv(os.path.join(out_dir, "candidates.csv"))
    methods = [row["method"] for row in bench]
    cx = [float(r["x"]) for r in candidates]
    cy = [float(r["y"]) for r in candidates]
    cz = [float(r["z"]) for r in candidates]

    # ---- layouts: per method a top view (x-y) above a side view (x-z), 4 methods a row ------
    n = len(methods)
    per_row = min(4, n)
    method_rows = math.ceil(n / per_row)
    fig, axes = plt.subplots(2 * method_rows, per_row, figsize=(4.0 * per_row, 5.2 * method_rows),
                             squeeze=False)
    for index in range(method_rows * per_row):
        if index >= n:
            axes[2 * (index // per_row)][index % per_row].axis("off")
            axes[2 * (index // per_row) + 1][index % per_row].axis("off")
    for index, method in enumerate(methods):
        sx = [float(r["x"]) for r in layouts if r["method"] == method]
        sy = [float(r["y"]) for r in layouts if r["method"] == method]
        sz = [float(r["z"]) for r in layouts if r["method"] == method]
        order = [int(r["order"]) for r in layouts if r["method"] == method]
        for view, (ca, cb, sa, sb, label) in enumerate(
                [(cx, cy, sx, sy, "y"), (cx, cz, sx, sz, "z")]):
            ax = axes[2 * (index // per_row) + view][index % per_row]
            ax.scatter(ca, cb, s=0.5, c="0.8", linewidths=0)
            ax.scatter(sa, sb, s=22, c=order, cmap="viridis", edgecolors="k", linewidths=0.4)
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_xlabel("x", fontsize=7)
            ax.set_ylabel(label, fontsize=7)
            ax.tick_params(labelsize=6)
            if view == 0:
                ax.set_title(method, fontsize=9)
    fig.suptitle("sensor layouts: top (x-y) and side (x-z) views; colour = order chosen, "
                 "grey = candidates", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "layouts.png"), dpi=110)
    plt.close(fig)

    # ---- metrics per method ----------------------------------------------------------------
    metrics = [
        ("log_det_fim", "log det FIM (higher better)", False),
        ("condition_number", "cond FIM (lower better)", True),
        ("max_offdiag_mac", "max off-diagonal MAC (lower better)", False),
        ("stress_error_trace", "LS stress error trace, relative (lower better)", True),
        ("stress_error_max", "LS stress error max, relative (lower better)", True),
        ("monte_carlo_error", "LS Monte-Carlo stress error (lower better)", True),
        ("bayes_error_trace", "Bayes stress error trace, relative (lower better)", True),
        ("bayes_monte_carlo_error", "Bayes Monte-Carlo stress error (lower better)", True),
        ("worst_failure_ratio", "worst one-sensor failure, trace ratio", True),
        ("seconds", "run time [s]", True),
    ]
    cols = 4
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.2 * rows), squeeze=False)
    for index, (key, title, log) in enumerate(metrics):
        ax = axes[index // cols][index % cols]
        values = []
        for row in bench:
            v = float(row[key])
            values.append(v if math.isfinite(v) else float("nan"))
        ax.bar(range(n), values, color="tab:blue")
        ax.set_xticks(range(n))
        ax.set_xticklabels(methods, rotation=60, ha="right", fontsize=7)
        ax.set_title(title, fontsize=8)
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            ax.text(0.5, 0.5, "not finite for any method", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
        elif log and all(v > 0 for v in finite):
            ax.set_yscale("log")
        ax.tick_params(axis="y", labelsize=7)
    for index in range(len(metrics), rows * cols):
        axes[index // cols][index % cols].axis("off")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "metrics.png"), dpi=120)
    plt.close(fig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
