#!/usr/bin/env python3
"""Compares vsense's rainflow counts with fatpack's on the same random histories, and times both.

    pip install fatpack numpy
    benchmarks/rainflow_reference.py --bench build/benchmarks/bench_rainflow [--samples 1000000]

For each history (a noise-driven resonator at 0.05 of the sample rate, and white noise):
- exact turning points are found with numpy (fatpack's own find_reversals first rounds the
  samples to k load classes, which would change the ranges; its find_rainflow_cycles and
  concatenate_reversals are used unchanged on the exact turning points);
- fatpack's 4-point cycles plus its residue treatment (the residue concatenated with itself and
  counted again, ISO 12110-2) are compared with `bench_rainflow --count --residue=closed`.
  The joint residue + residue is made with exact_reversals() here: fatpack 0.7.8's
  concatenate_reversals keeps the wrong point when the joint is not a turning point (e.g.
  [0 5 2 4 3] + [0 5 2 4 3] gives [0 5 2 4 3 5 2 4 3]: the valley 0 is dropped and 3, which lies
  on the slope 4 -> 0, is kept; its two mixed-sign cases are swapped). The script also reports
  how many cycles fatpack's own concatenation changes;
- fatpack's cycles plus the residue ranges as half cycles (ASTM E1049) are compared with
  `--residue=half`.
Cycles are compared as exact multisets of (range, mean, count); both sides compute
range = |b - a| and mean = (a + b) / 2 from the same pair of doubles.
Timing: fatpack's usual pipeline find_rainflow_ranges(y, k=64) and the exact-reversal pipeline
above, against the C++ counter's own timing of process + finish (reported by bench_rainflow).
"""
import argparse
import collections
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

import fatpack


def history(kind, n, seed):
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n)
    if kind == "white":
        return 10.0 * e
    r, w = 0.98, 2.0 * np.pi * 0.05
    a1, a2 = 2.0 * r * np.cos(w), -r * r
    y = np.empty(n)
    y1 = y2 = 0.0
    for i in range(n):  # plain loop: the exact same recursion as the C++ benchmark's generator
        v = a1 * y1 + a2 * y2 + e[i]
        y2, y1 = y1, v
        y[i] = v
    return 10.0 * y


def exact_reversals(y):
    """First sample, every slope sign change (plateaus as one point), last sample."""
    keep = np.concatenate(([True], np.diff(y) != 0.0))
    z = y[keep]
    if z.size <= 2:
        return z
    d = np.sign(np.diff(z))
    turn = np.flatnonzero(d[1:] != d[:-1]) + 1
    return np.concatenate((z[:1], z[turn], z[-1:]))


def fatpack_counts(y, residue, fatpack_joint=False):
    rev = exact_reversals(y)
    cycles, res = fatpack.find_rainflow_cycles(rev)
    out = collections.Counter()

    def add(c, count):
        if len(c) == 0:
            return
        c = np.asarray(c).reshape(-1, 2)
        rng = np.abs(c[:, 1] - c[:, 0])
        mean = 0.5 * (c[:, 0] + c[:, 1])
        for r, m in zip(rng.tolist(), mean.tolist()):
            out[(r, m, count)] += 1

    add(cycles, 1.0)
    if residue == "closed":
        if len(res) >= 2:
            if fatpack_joint:
                joined = fatpack.concatenate_reversals(res, res)
            else:
                joined = exact_reversals(np.concatenate((res, res)))
            closed, _ = fatpack.find_rainflow_cycles(joined)
            add(closed, 1.0)
    else:
        add(np.column_stack((res[:-1], res[1:])), 0.5)
    return out


def vsense_counts(bench, y, residue):
    with tempfile.NamedTemporaryFile(suffix=".f64", delete=False) as f:
        f.write(np.ascontiguousarray(y, dtype="<f8").tobytes())
        path = f.name
    try:
        p = subprocess.run([bench, f"--count={path}", f"--residue={residue}"],
                           capture_output=True, text=True, check=True)
    finally:
        os.unlink(path)
    out = collections.Counter()
    for line in p.stdout.splitlines():
        r, m, c = line.split()
        out[(float(r), float(m), float(c))] += 1
    seconds = float(p.stderr.split("# seconds")[1].split()[0])
    return out, seconds


def best_of(f, repeat):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default="build/benchmarks/bench_rainflow")
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"fatpack {fatpack.__version__}, numpy {np.__version__}, Python {platform.python_version()}")
    ok = True
    rows = []
    for kind, seed in (("narrowband", 1), ("white", 2)):
        y = history(kind, args.samples, seed)
        for residue in ("closed", "half"):
            ref = fatpack_counts(y, residue)
            ours, _ = vsense_counts(args.bench, y, residue)
            same = ref == ours
            ok &= same
            n_ref, n_ours = sum(ref.values()), sum(ours.values())
            print(f"{kind:10s} residue={residue:6s} cycles fatpack {n_ref:8d} vsense {n_ours:8d} "
                  f"identical multisets: {same}")
            if not same:
                diff = (ref - ours) + (ours - ref)
                print("  first differences:", list(diff.items())[:5])
            if residue == "closed":
                own = fatpack_counts(y, residue, fatpack_joint=True)
                changed = sum(((own - ours) + (ours - own)).values())
                print(f"{'':10s} with fatpack's own concatenate_reversals: {changed} cycles differ")
        # timings (best of --repeat)
        t_fp_default = best_of(lambda: fatpack.find_rainflow_ranges(y, k=64), args.repeat)
        t_fp_exact = best_of(lambda: fatpack_counts(y, "closed"), args.repeat)
        t_ours = min(vsense_counts(args.bench, y, "closed")[1] for _ in range(args.repeat))
        n = args.samples
        rows.append((kind, n / t_fp_default, n / t_fp_exact, n / t_ours))
    print()
    print("| history | fatpack find_rainflow_ranges (k=64) | fatpack, exact reversals | vsense RainflowCounter (1 channel, double) | vsense / fatpack (k=64) |")
    print("|---|---|---|---|---|")
    for kind, a, b, c in rows:
        print(f"| {kind}, {args.samples:.0e} samples | {a / 1e6:.2f} M samples/s | {b / 1e6:.2f} M samples/s "
              f"| {c / 1e6:.1f} M samples/s | {c / a:.0f}x |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
