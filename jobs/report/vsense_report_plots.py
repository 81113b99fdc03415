#!/usr/bin/env python3
"""Draws the PNG plots of a vsense report from the CSV files next to it.

    python3 vsense_report_plots.py REPORT_DIR [STRESS_UNIT]

vsense writes the CSVs (frequencies, mesh_points, sensors, comparison, worst_nodes, scatter,
history) and runs this script, which is compiled into vsense (jobs/report/ in the sources).
Each plot whose data exist is drawn on its own; one that fails is reported ("error: ...") and
the others are still drawn. Exit status: 0 when every plot with data was drawn, 1 otherwise.
Needs matplotlib only (no NumPy use beyond what matplotlib itself needs).
"""
import csv
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(directory, name):
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        return None
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def number(text):
    try:
        v = float(text)
    except (TypeError, ValueError):
        return math.nan
    return v


def save(fig, directory, name):
    fig.tight_layout()
    fig.savefig(os.path.join(directory, name), dpi=110)
    plt.close(fig)
    print("wrote", name)


def frequencies(d, unit):
    rows = read(d, "frequencies.csv")
    if not rows:
        return False
    modes = [int(r["mode"]) for r in rows]
    f = [number(r["frequency_hz"]) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar(modes, f, color="#4477aa")
    ax.set_xlabel("mode")
    ax.set_ylabel("frequency [Hz]")
    ax.set_title("Natural frequencies")
    ax.set_xticks(modes if len(modes) <= 40 else modes[:: max(1, len(modes) // 20)])
    ax.grid(axis="y", alpha=0.3)
    save(fig, d, "frequencies.png")
    return True


def layout(d, unit):
    sensors = read(d, "sensors.csv")
    if sensors is None:
        return False
    mesh = read(d, "mesh_points.csv") or []
    mx = [number(r["x"]) for r in mesh]
    my = [number(r["y"]) for r in mesh]
    mz = [number(r["z"]) for r in mesh]
    methods = []
    for r in sensors:
        if r["method"] not in methods:
            methods.append(r["method"])
    used = [m for m in methods if any(r["method"] == m and r["used"] == "1" for r in sensors)]
    markers = ["o", "s", "^", "D", "v", "P", "X", "*"]
    views = [("x", "y", mx, my), ("x", "z", mx, mz), ("y", "z", my, mz)]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
    for ax, (a, b, pa, pb) in zip(axes, views):
        ax.scatter(pa, pb, s=0.3, color="#bbbbbb", rasterized=True)
        for k, m in enumerate(methods):
            rows = [r for r in sensors if r["method"] == m]
            is_used = m in used
            ax.scatter([number(r[a]) for r in rows], [number(r[b]) for r in rows],
                       s=60 if is_used else 28, marker=markers[k % len(markers)],
                       facecolors="#cc3311" if is_used else "none",
                       edgecolors="#cc3311" if is_used else "C%d" % (k % 10),
                       linewidths=1.2, label=m + (" (used)" if is_used and len(methods) > 1 else ""),
                       zorder=3 if is_used else 2)
            if is_used:
                for r in rows:
                    ax.annotate(r["order"], (number(r[a]), number(r[b])), fontsize=7,
                                xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(a)
        ax.set_ylabel(b)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title("%s-%s view" % (a, b))
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle("Sensor layout (numbers: order of choice)")
    save(fig, d, "layout.png")
    return True


def comparison(d, unit):
    rows = read(d, "comparison.csv")
    if not rows:
        return False
    methods = [r["method"] for r in rows]
    metrics = [("log_det_fim", "log det FIM (higher: better)", False),
               ("max_offdiag_mac", "max off-diagonal MAC", False),
               ("stress_error_trace", "LS stress error (trace ratio)", True),
               ("bayes_error_trace", "Bayesian stress error (trace ratio)", True)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(14, 3.8))
    for ax, (key, title, log) in zip(axes, metrics):
        values = [number(r.get(key)) for r in rows]
        finite = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
        shown = []
        for v in values:
            if math.isfinite(v) and (v > 0 or not log):
                shown.append(v)
            else:
                shown.append(0 if not finite else (max(finite) if not log else max(finite)))
        bars = ax.bar(range(len(methods)), shown, color="#4477aa")
        for bar, v in zip(bars, values):
            if not (math.isfinite(v) and (v > 0 or not log)):
                bar.set_hatch("//")
                bar.set_facecolor("#dddddd")
                ax.annotate("inf" if v == math.inf or not math.isfinite(v) else "%.3g" % v,
                            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", fontsize=7)
        if log and finite:
            ax.set_yscale("log")
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(methods, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Placement comparison")
    save(fig, d, "comparison.png")
    return True


def stress_damage(d, unit):
    rows = read(d, "worst_nodes.csv")
    if not rows:
        return False
    labels = [r["node_id"] for r in rows]
    x = list(range(len(rows)))
    w = 0.38
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    tv = [number(r["true_von_mises_max"]) for r in rows]
    ev = [number(r["est_von_mises_max"]) for r in rows]
    td = [number(r["true_damage"]) for r in rows]
    ed = [number(r["est_damage"]) for r in rows]
    ax = axes[0]
    if any(math.isfinite(v) for v in tv):
        ax.bar([i - w / 2 for i in x], [v if math.isfinite(v) else 0 for v in tv], w,
               label="true (simulation)", color="#228833")
    if any(math.isfinite(v) for v in ev):
        ax.bar([i + w / 2 for i in x], [v if math.isfinite(v) else 0 for v in ev], w,
               label="estimated (reconstruction)", color="#4477aa")
    ax.set_ylabel("peak von Mises [%s]" % unit)
    ax.set_title("Peak von Mises stress")
    ax = axes[1]
    drawn = False
    if any(math.isfinite(v) and v > 0 for v in td):
        ax.bar([i - w / 2 for i in x], [v if math.isfinite(v) else 0 for v in td], w,
               label="true (simulation)", color="#228833")
        drawn = True
    if any(math.isfinite(v) and v > 0 for v in ed):
        ax.bar([i + w / 2 for i in x], [v if math.isfinite(v) else 0 for v in ed], w,
               label="estimated (reconstruction)", color="#4477aa")
        drawn = True
    if drawn:
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no damage: no S-N curve,\nor all ranges below the cut-off",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("Miner damage over the record")
    ax.set_title("Fatigue damage")
    for ax in axes:
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=30, fontsize=8)
        ax.set_xlabel("node")
        ax.grid(axis="y", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("Worst nodes")
    save(fig, d, "stress_damage.png")
    return True


def estimated_vs_true(d, unit):
    rows = read(d, "scatter.csv")
    if not rows:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    pairs = [("true_von_mises_max", "est_von_mises_max", "peak von Mises [%s]" % unit, False),
             ("true_damage", "est_damage", "Miner damage", True)]
    for ax, (t, e, label, log) in zip(axes, pairs):
        tv = [number(r[t]) for r in rows]
        ev = [number(r[e]) for r in rows]
        pts = [(a, b) for a, b in zip(tv, ev)
               if math.isfinite(a) and math.isfinite(b) and (not log or (a > 0 and b > 0))]
        if not pts:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(label)
            continue
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=12, color="#4477aa")
        lo = min(min(p) for p in pts)
        hi = max(max(p) for p in pts)
        ax.plot([lo, hi], [lo, hi], color="#999999", lw=1)
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel("true (simulation)")
        ax.set_ylabel("estimated (reconstruction)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.suptitle("Estimated against true, at the output nodes")
    save(fig, d, "estimated_vs_true.png")
    return True


def stress_history(d, unit):
    rows = read(d, "history.csv")
    if not rows:
        return False
    t = [number(r["t_s"]) for r in rows]
    nodes = [k[5:] for k in rows[0].keys() if k.startswith("true_")]
    fig, axes = plt.subplots(len(nodes), 1, figsize=(11, 2.4 * len(nodes)), sharex=True,
                             squeeze=False)
    for ax, node in zip(axes[:, 0], nodes):
        ax.plot(t, [number(r["true_" + node]) for r in rows], color="#228833", lw=0.8,
                label="true (simulation)")
        if ("est_" + node) in rows[0]:
            ax.plot(t, [number(r["est_" + node]) for r in rows], color="#4477aa", lw=0.8,
                    ls="--", label="estimated (reconstruction)")
        ax.set_ylabel("von Mises [%s]" % unit)
        ax.set_title("node %s" % node, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("time [s]")
    save(fig, d, "stress_history.png")
    return True


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    directory = sys.argv[1]
    unit = sys.argv[2] if len(sys.argv) > 2 else "MPa"
    failed = 0
    for plot in (frequencies, layout, comparison, stress_damage, estimated_vs_true,
                 stress_history):
        try:
            plot(directory, unit)
        except Exception as error:  # one broken plot must not cost the others
            failed += 1
            print("error: %s: %s" % (plot.__name__, error))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
