#!/usr/bin/env bash
# Read + assembly benchmark on the built-in genset: generates the decks with
# `vsense model generate`, then runs bench_assembly on each in its own process (so that every
# figure of peak memory is that model's alone). Prints the context (date, machine, commit)
# and one table row per size; with JSON=1, JSON lines instead.
#
#   benchmarks/run_assembly.sh                      # 1e5 1e6 1e7 in ./build
#   BUILD=build-rel SIZES="1e5 1e6" REPEAT=3 benchmarks/run_assembly.sh
#
# Assembly needs about 2.4 kB per DOF at its peak (measured, C3D8 genset); a size whose
# estimate exceeds 80% of MemAvailable is only generated and read (bench_assembly --read-only).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD=${BUILD:-$root/build}
SIZES=${SIZES:-"1e5 1e6 1e7"}
ELEMENT=${ELEMENT:-c3d8}
REPEAT=${REPEAT:-1}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/vsense-bench-assembly.XXXXXX")}
KEEP=${KEEP:-0}
BYTES_PER_DOF=${BYTES_PER_DOF:-2400}

vsense=$BUILD/bin/vsense
bench=$BUILD/benchmarks/bench_assembly
for exe in "$vsense" "$bench"; do
  [[ -x $exe ]] || { echo "run_assembly.sh: $exe not built (make vsense bench_assembly)" >&2; exit 2; }
done
cleanup() { [[ $KEEP == 1 ]] || rm -rf "$WORK"; }
trap cleanup EXIT

echo "# date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "# machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GB"
echo "# commit:  $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo ' (modified tree)')"
echo "# element: $ELEMENT, best of $REPEAT, work dir $WORK"

for size in $SIZES; do
  deck=$WORK/genset_$size.inp
  gen_json=$("$vsense" --json model generate genset --dofs "$size" --element "$ELEMENT" --out "$deck")
  echo "# generate $size: $gen_json"
  dofs=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['dofs'])" "$gen_json")
  available_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
  need_kb=$((dofs * BYTES_PER_DOF / 1024))
  flags=()
  if ((need_kb * 10 > available_kb * 8)); then
    echo "# $size: assembly would need ~$((need_kb / 1024 / 1024)) GB of $((available_kb / 1024 / 1024)) GB available: reading only"
    flags+=(--read-only)
  fi
  if [[ ${JSON:-0} == 1 ]]; then
    "$bench" --json --repeat "$REPEAT" "${flags[@]}" "$deck"
  else
    "$bench" --repeat "$REPEAT" "${flags[@]}" "$deck"
  fi
  rm -f "$deck"
done
