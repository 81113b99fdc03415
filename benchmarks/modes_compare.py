#!/usr/bin/env python3
"""Modal benchmark: `vsense modes` against CalculiX, SciPy eigsh (shift-invert) and Spectra +
CHOLMOD on the built-in genset, all in the same run, with time and peak-memory ratios.

    python3 benchmarks/modes_compare.py --build build --dofs 1e5 --modes 50 200
    python3 benchmarks/modes_compare.py --dofs 1e5 1e6 --modes 50 --skip ccx
    python3 benchmarks/modes_compare.py --modes 50 --solvers block lanczos   # both CPU solvers
    python3 benchmarks/modes_compare.py --modes 50 --slepc-ranks 2           # SLEPc on 2 ranks
    python3 benchmarks/modes_compare.py --dofs 1e6 --modes 50 200 --cuda     # and the GPU command

The vsense rows are the whole `vsense modes` command per solver (`--solvers`, default the
block solver; `lanczos` is the single-vector reference it replaced), with its own breakdown
(factorisation incl. the Sturm-count LDL^T, eigen-iteration, stresses, write) from --json.
SLEPc is `vsense modes --backend slepc` (PETSc/SLEPc Krylov-Schur on a MUMPS Cholesky factor,
`--slepc-ranks` MPI ranks, default 1): its reference time is SLEPc's factorisation + iteration
as the command reports them, the same "solve alone" as SciPy's and Spectra's.

Every reference solves the same model: CalculiX reads the same .inp; SciPy and Spectra read
the matrices written by `vsense model export` (the same K and M vsense factors). Times: vsense
is the whole `vsense modes` command (read, assemble, factor, solve, Sturm check, stresses,
write); CalculiX the whole `ccx` run; SciPy and Spectra the solve alone (factor + Lanczos),
their loading excluded. Peak memory is each process's maximum resident set (GNU time).
BLAS kernels: vsense (and bench_spectra_cholmod) restart on OpenBLAS's faster kernels when
OpenBLAS fell back to generic ones on a CPU model it does not know; CalculiX and SciPy run with
OPENBLAS_CORETYPE set to the kernels vsense reports, so that every column uses the same dgemm.
Needs: scipy (pip install scipy), GNU time (/usr/bin/time), ccx.
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

SIGMA = -39.47841760435743  # -(2 pi * 1 Hz)^2, the shift vsense's solver uses for this model


def run_timed(cmd, cwd=None, env=None):
    """Runs cmd under GNU time; returns (wall seconds, peak RSS bytes, stdout)."""
    wrapped = ["/usr/bin/time", "-f", "@@TIME %e %M"] + cmd
    t0 = time.time()
    proc = subprocess.run(wrapped, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    m = re.search(r"@@TIME ([0-9.]+) ([0-9]+)", proc.stderr)
    peak = int(m.group(2)) * 1024 if m else 0
    return (float(m.group(1)) if m else wall), peak, proc.stdout


SCIPY_SNIPPET = r"""
import json, sys, time, resource
import numpy as np, scipy.io, scipy.sparse as sp
from scipy.sparse.linalg import eigsh
d, k, sigma = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
K = scipy.io.mmread(d + "/K.mtx").tocsc(); M = scipy.io.mmread(d + "/M.mtx").tocsc()
t0 = time.time()
w = eigsh(K, k=k, M=M, sigma=sigma, which="LM", return_eigenvectors=True)[0]
solve = time.time() - t0
w = np.sort(w)
print(json.dumps({"reference": "scipy-eigsh", "solve_s": solve,
                  "lowest_hz": float(np.sqrt(max(w[0], 0)) / (2 * np.pi)),
                  "highest_hz": float(np.sqrt(max(w[-1], 0)) / (2 * np.pi))}))
"""


def ccx_frequencies(dat_path):
    freqs = []
    with open(dat_path) as f:
        text = f.read()
    block = text.split("E I G E N V A L U E   O U T P U T")[-1].split("P A R T I C I P A T I O N")[0]
    for line in block.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0].isdigit():
            try:
                freqs.append(float(parts[3]))
            except ValueError:
                pass
    return freqs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--dofs", nargs="+", default=["1e5"])
    ap.add_argument("--modes", nargs="+", type=int, default=[50])
    ap.add_argument("--skip", nargs="*", default=[], choices=["ccx", "scipy", "spectra", "slepc"])
    ap.add_argument("--slepc-ranks", type=int, default=1, help="MPI ranks of the SLEPc run")
    ap.add_argument("--solvers", nargs="+", default=["block"], choices=["block", "lanczos"])
    ap.add_argument("--work", default=None)
    ap.add_argument("--cuda", action="store_true",
                    help="also run the whole `vsense modes --backend cuda` (needs a CUDA device): "
                         "time and the CPU command's time over it")
    args = ap.parse_args()

    vsense = os.path.abspath(os.path.join(args.build, "bin", "vsense"))
    spectra = os.path.abspath(os.path.join(args.build, "benchmarks", "bench_spectra_cholmod"))
    work = args.work or tempfile.mkdtemp(prefix="vsense-modes-bench-")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"# modes benchmark {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}, "
          f"{os.cpu_count()} cores ({cpu}), python {platform.python_version()}")
    rows = []
    ref_env = None  # the environment of CalculiX and SciPy: vsense's BLAS kernels
    for dofs in args.dofs:
        n = int(float(dofs))
        d = os.path.join(work, f"genset_{n}")
        os.makedirs(d, exist_ok=True)
        inp = os.path.join(d, "genset.inp")
        subprocess.run([vsense, "model", "generate", "genset", "--dofs", str(n), "--out", inp, "-q"], check=True)
        subprocess.run([vsense, "model", "export", inp, "--out-dir", d, "-q"], check=True)
        for m in args.modes:
            row = {"dofs": n, "modes": m}
            for solver in args.solvers:
                key = "vsense" if solver == args.solvers[0] else f"vsense_{solver}"
                wall, peak, out = run_timed([vsense, "modes", inp, "--modes", str(m), "--solver", solver,
                                             "--out", os.path.join(d, f"modes_{m}_{solver}.h5"), "--json", "-q"])
                summary = json.loads(out.strip().splitlines()[-1])
                t = summary["timings_s"]
                row.update({f"{key}_s": wall, f"{key}_mem": peak, f"{key}_solver": solver,
                            f"{key}_solve_s": t["factor"] + t["solve"], f"{key}_sturm_s": t.get("sturm", 0.0),
                            f"{key}_breakdown": t, f"{key}_highest_hz": summary["frequencies_hz"][-1]})
                row["n_equations"] = summary["n_equations"]
                core = re.search(r"OpenBLAS (\S+) kernels", summary.get("backend", ""))
                if ref_env is None:
                    ref_env = dict(os.environ)
                    if core and "OPENBLAS_CORETYPE" not in ref_env:
                        ref_env["OPENBLAS_CORETYPE"] = core.group(1)
                    print(f"# BLAS: vsense {summary.get('backend', '?')}; CalculiX and SciPy run with "
                          f"OPENBLAS_CORETYPE={ref_env.get('OPENBLAS_CORETYPE', '(unset)')}", flush=True)
            if args.cuda:
                wall, peak, out = run_timed([vsense, "modes", inp, "--modes", str(m), "--backend", "cuda",
                                             "--out", os.path.join(d, f"modes_{m}_cuda.h5"), "--json", "-q"])
                summary = json.loads(out.strip().splitlines()[-1])
                row.update(cuda_s=wall, cuda_mem=peak, cuda_backend=summary["backend"],
                           cuda_breakdown=summary["timings_s"], cuda_highest_hz=summary["frequencies_hz"][-1])
            if "spectra" not in args.skip:
                wall, peak, out = run_timed([spectra, d, str(m), str(SIGMA)])
                r = json.loads(out.strip().splitlines()[-1])
                row.update(spectra_s=r["solve_s"], spectra_mem=peak, spectra_highest_hz=r["highest_hz"])
            if "slepc" not in args.skip:
                cmd = [vsense, "modes", inp, "--modes", str(m), "--backend", "slepc",
                       "--out", os.path.join(d, f"modes_{m}_slepc.h5"), "--json", "-q"]
                if args.slepc_ranks > 1:
                    cmd = ["mpirun", "--oversubscribe", "--allow-run-as-root", "-np",
                           str(args.slepc_ranks)] + cmd
                wall, peak, out = run_timed(cmd)
                summary = json.loads(out.strip().splitlines()[-1])
                t = summary["timings_s"]
                row.update(slepc_s=t["factor"] + t["solve"], slepc_mem=peak, slepc_command_s=wall,
                           slepc_breakdown=t, slepc_highest_hz=summary["frequencies_hz"][-1])
            if "scipy" not in args.skip:
                wall, peak, out = run_timed([sys.executable, "-c", SCIPY_SNIPPET, d, str(m), str(SIGMA)],
                                            env=ref_env)
                r = json.loads(out.strip().splitlines()[-1])
                row.update(scipy_s=r["solve_s"], scipy_mem=peak, scipy_highest_hz=r["highest_hz"])
            if "ccx" not in args.skip and shutil.which("ccx"):
                job = os.path.join(d, f"ccx_{m}")
                with open(job + ".inp", "w") as f:
                    f.write(f"*INCLUDE, INPUT={inp}\n*STEP\n*FREQUENCY\n{m}\n*END STEP\n")
                wall, peak, _ = run_timed(["ccx", "-i", os.path.basename(job)], cwd=d, env=ref_env)
                freqs = ccx_frequencies(job + ".dat")
                row.update(ccx_s=wall, ccx_mem=peak, ccx_highest_hz=freqs[-1] if freqs else float("nan"))
            rows.append(row)
            print(json.dumps(row), flush=True)

    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"\nload average at the end: {' '.join(load)}")
    print("\n| equations | modes | vsense s (factor+solve s), MiB | CalculiX s (time ratio, memory ratio) | "
          "SciPy eigsh s (ratios) | Spectra+CHOLMOD s (ratios) | SLEPc s (ratios) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        def ref(name):
            if f"{name}_s" not in r:
                return "-"
            return (f"{r[name + '_s']:.1f} ({r[name + '_s'] / r['vsense_s']:.2f}x, "
                    f"{r[name + '_mem'] / max(r['vsense_mem'], 1):.2f}x), {r[name + '_mem'] / 2**20:.0f} MiB")
        print(f"| {r['n_equations']} | {r['modes']} | {r['vsense_s']:.1f} ({r['vsense_solve_s']:.1f}), "
              f"{r['vsense_mem'] / 2**20:.0f} | {ref('ccx')} | {ref('scipy')} | {ref('spectra')} | {ref('slepc')} |")
        if "cuda_s" in r:
            print(f"|   vsense --backend cuda | | {r['cuda_s']:.1f} s, {r['cuda_mem'] / 2**20:.0f} MiB host "
                  f"(CPU command / GPU command = {r['vsense_s'] / r['cuda_s']:.2f}x; {r['cuda_backend']}) | | | | |")
        for solver in args.solvers[1:]:
            key = f"vsense_{solver}"
            print(f"|   vsense --solver {solver} | | {r[key + '_s']:.1f} ({r[key + '_solve_s']:.1f}), "
                  f"{r[key + '_mem'] / 2**20:.0f} MiB ({r[key + '_s'] / r['vsense_s']:.2f}x the default) | | | | |")
    print("\nratios = reference / vsense (> 1: vsense faster or smaller). vsense: the whole command; "
          "CalculiX: the whole ccx run; SciPy, Spectra and SLEPc: the solve alone "
          f"(SLEPc on {args.slepc_ranks} rank{'s' if args.slepc_ranks > 1 else ''}).")
    print("Highest frequencies agree to 1e-6:",
          all(abs(h - r["vsense_highest_hz"]) <= 1e-6 * r["vsense_highest_hz"]
              for r in rows for h in [r[k] for k in r if k.endswith("highest_hz")]))


if __name__ == "__main__":
    main()
