#!/usr/bin/env bash
# compare_builds.sh - before/after harness: times nfscale's training step with a baseline build (default: commit
# 3077233, built once into build-baseline/<commit>/ from a detached git worktree, nfscale_cli only, then cached)
# and the current build, alternating A/B per repetition (the order flips every repetition), each repetition a fresh
# `nfscale bench --peer none --no-unfused` process per binary; prints medians, [min..max] and paired new/base ratios
# as a markdown table, and the new build's share of the bf16 GEMM peak probed in the same runs.
#
#   bench/compare_builds.sh [--base COMMIT] [--base-bin PATH] [--new-bin PATH] [--base-env "VAR=V ..."]
#                           [--reps N] [--steps N] [--cases "MODEL:RES:BATCH ..."] [--threads "1 2"]
#                           [--precision SETTING] [--omp-wait passive|active|default] [--json FILE]
#   bench/compare_builds.sh --study PRESET [--base ...] [--base-bin ...] [--new-bin ...] [--base-env ...]
#
# --base-env sets environment variables for the base runs only: with --base-bin equal to --new-bin it compares one
# binary with and without its kernels, e.g. --base-env "NFSCALE_CONV3X3=0 NFSCALE_DENSE_CONV3X3=0
# NFSCALE_POINTWISE_GEMM_FP32=0" (the issue-12 routes off).
# --study PRESET instead times a whole `nfscale study --workers 2 --preset PRESET` (as scripts/run-study.sh runs
# it) with each binary, base first, each into a fresh temporary directory with its own empty dedup cache
# (NFSCALE_CACHE_DIR), and prints both wall times, the trials each ran and each study's fitted exponent.
# --omp-wait sets OMP_WAIT_POLICY for both sides' timed runs: passive (the default, as every table before session 12
# was measured: idle OpenMP threads sleep at once, so each parallel region pays a wake-up), active (they spin), or
# default (unset: libgomp spins briefly, then sleeps; what `nfscale train` gets unless the user sets it).
# Defaults: base 3077233, new build/bin/nfscale, 5 repetitions of 3 steps, cases mini-F0 and mini-F3 at 32 px with
# batch 64 and 128, threads 1 and 2, precision fp32/channels_last. On a shared machine the absolute numbers move
# with the load (printed per run); the paired ratios are the robust figure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base=3077233
base_bin=""
new_bin="$root/build/bin/nfscale"
reps=5
steps=3
cases="mini-F0:32:64 mini-F0:32:128 mini-F3:32:64 mini-F3:32:128"
threads="1 2"
precision="fp32/channels_last"
json_out=""
study=""
omp_wait="passive"
base_env=""

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --base-bin) base_bin="$2"; shift 2 ;;
    --new-bin) new_bin="$2"; shift 2 ;;
    --base-env) base_env="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --cases) cases="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --precision) precision="$2"; shift 2 ;;
    --json) json_out="$2"; shift 2 ;;
    --omp-wait) omp_wait="$2"; shift 2 ;;
    --study) study="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "compare_builds.sh: unknown argument '$1' (see --help)" >&2; usage 2 ;;
  esac
done
[[ "$reps" =~ ^[1-9][0-9]*$ && "$steps" =~ ^[1-9][0-9]*$ ]] || {
  echo "compare_builds.sh: --reps and --steps must be positive whole numbers (got '$reps', '$steps')" >&2; exit 2; }
case "$omp_wait" in
  passive|active) omp_env="OMP_WAIT_POLICY=$omp_wait" ;;
  default) omp_env="-u OMP_WAIT_POLICY" ;;
  *) echo "compare_builds.sh: --omp-wait takes passive, active or default, got '$omp_wait'" >&2; exit 2 ;;
esac
for kv in $base_env; do
  [[ "$kv" =~ ^[A-Za-z_][A-Za-z0-9_]*=.*$ ]] || {
    echo "compare_builds.sh: --base-env takes VAR=VALUE words, got '$kv'" >&2; exit 2; }
done
[ -x "$new_bin" ] || { echo "compare_builds.sh: --new-bin $new_bin is not an executable (build nfscale_cli first)" >&2; exit 2; }

# The baseline binary: given, cached, or built now (a detached worktree of the commit, nfscale_cli only).
if [ -z "$base_bin" ]; then
  commit="$(git -C "$root" rev-parse --short=7 "$base^{commit}")" || {
    echo "compare_builds.sh: --base $base is not a commit of $root" >&2; exit 2; }
  cache="$root/build-baseline/$commit"
  base_bin="$cache/bin/nfscale"
  if [ ! -x "$base_bin" ]; then
    echo "[compare] building $commit into $cache (once; nfscale_cli only)" >&2
    [ -d "$cache/src" ] || git -C "$root" worktree add --detach "$cache/src" "$commit" >&2
    cmake -S "$cache/src" -B "$cache/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
    cmake --build "$cache/build" --target nfscale_cli >&2
    mkdir -p "$cache/bin"
    cp "$cache/build/bin/nfscale" "$base_bin.tmp" && mv "$base_bin.tmp" "$base_bin"
  fi
fi
[ -x "$base_bin" ] || { echo "compare_builds.sh: --base-bin $base_bin is not an executable" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -n "$study" ]; then
  for which in base new; do
    bin="$base_bin"; envs=""; [ "$which" = new ] && bin="$new_bin"; [ "$which" = base ] && envs="$base_env"
    mkdir -p "$work/cache-$which"
    t0=$(date +%s.%N); l0=$(cut -d' ' -f1 /proc/loadavg)
    # shellcheck disable=SC2086  # omp_env and envs: env arguments, checked above
    env NFSCALE_CACHE_DIR="$work/cache-$which" $envs "$bin" study --workers 2 --preset "$study" \
      --out "$work/study-$which" > "$work/study-$which.log" 2>&1 || {
      echo "compare_builds.sh: $bin study --preset $study failed:" >&2; tail -20 "$work/study-$which.log" >&2; exit 1; }
    t1=$(date +%s.%N)
    trials=$(grep -cE '^\[sweep\] [^ ]+ +e=' "$work/study-$which.log" || true)
    law=$(grep -m1 -oE 'L = a \* C\^b .*b = [-0-9.e+]+ \[[^]]*\]' "$work/study-$which.log" | sed 's/.*b = /L ~ C^/' || true)
    echo "study --preset $study, $which ($envs $bin): $(python3 -c "print('%.0f' % ($t1 - $t0))") s wall," \
      "$trials trials, ${law:-(no fit line)} (load $l0 -> $(cut -d' ' -f1 /proc/loadavg))"
  done
  exit 0
fi
records="$work/records.jsonl"
: > "$records"

# One timed run: which (base|new), binary, threads, case, repetition -> one JSON record line.
run_one() {
  local which="$1" bin="$2" t="$3" c="$4" r="$5" out="$work/run.json"
  local envs=""; [ "$which" = base ] && envs="$base_env"
  # shellcheck disable=SC2086  # envs: VAR=VALUE words, checked above
  env $omp_env $envs "$bin" --threads "$t" bench --peer none --no-unfused --case "$c" --precision "$precision" \
    --reps 1 --steps "$steps" --infer-steps 1 --json "$out" > "$work/run.log" 2>&1 || {
      echo "compare_builds.sh: $bin failed on $c (threads $t):" >&2; cat "$work/run.log" >&2; exit 1; }
  python3 - "$out" "$which" "$t" "$c" "$r" "$(cut -d' ' -f1 /proc/loadavg)" >> "$records" <<'EOF'
import json, sys
path, which, t, c, r, load = sys.argv[1:]
case = json.load(open(path))[0]
print(json.dumps({"which": which, "threads": int(t), "case": c, "rep": int(r), "load": float(load),
                  "train_img_s": case["nfscale"]["train_img_s"][0],
                  "train_flop_per_img": 6.0 * case["macs_per_image"],
                  "peak_bf16": case["gemm_peak_gflops"]["bf16"], "peak_fp32": case["gemm_peak_gflops"]["fp32"],
                  "setting": case["nfscale"]["train_setting"]}))
EOF
}

echo "[compare] base $base_bin, new $new_bin; $reps alternating reps x $steps steps; $precision; OMP_WAIT_POLICY $omp_wait; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for t in $threads; do
  for c in $cases; do
    for ((r = 0; r < reps; ++r)); do
      if ((r % 2 == 0)); then
        run_one base "$base_bin" "$t" "$c" "$r"; run_one new "$new_bin" "$t" "$c" "$r"
      else
        run_one new "$new_bin" "$t" "$c" "$r"; run_one base "$base_bin" "$t" "$c" "$r"
      fi
    done
    echo "[compare] done: threads $t, $c (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  done
done

python3 - "$records" "$json_out" <<'EOF'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
keys = []
for r in recs:
    k = (r["threads"], r["case"])
    if k not in keys:
        keys.append(k)
def fmt(v):
    return "%.0f [%.0f..%.0f]" % (statistics.median(v), min(v), max(v))
print("| case | threads | base img/s | new img/s | new/base (paired) | new % of bf16 peak (in-run) | new % of fp32 GEMM peak | load |")
print("|---|---|---|---|---|---|---|---|")
summary = []
for t, c in keys:
    sel = [r for r in recs if r["threads"] == t and r["case"] == c]
    base = {r["rep"]: r for r in sel if r["which"] == "base"}
    new = {r["rep"]: r for r in sel if r["which"] == "new"}
    b = [base[i]["train_img_s"] for i in sorted(base)]
    n = [new[i]["train_img_s"] for i in sorted(new)]
    ratio = [new[i]["train_img_s"] / base[i]["train_img_s"] for i in sorted(new) if i in base]
    peak = max(r["peak_bf16"] for r in sel)
    share = [100.0 * x * sel[0]["train_flop_per_img"] / 1e9 / peak for x in n]
    peak32 = max(r["peak_fp32"] for r in sel)
    share32 = [100.0 * x * sel[0]["train_flop_per_img"] / 1e9 / peak32 for x in n]
    loads = [r["load"] for r in sel]
    print("| %s | %d | %s | %s | **%.2fx** [%.2f..%.2f] | %.1f%% (peak %.0f GFLOP/s) | %.1f%% (peak %.0f) | %.1f-%.1f |" % (
        c, t, fmt(b), fmt(n), statistics.median(ratio), min(ratio), max(ratio), statistics.median(share), peak,
        statistics.median(share32), peak32, min(loads), max(loads)))
    summary.append({"case": c, "threads": t, "base_img_s": b, "new_img_s": n, "ratio": ratio,
                    "new_pct_bf16_peak": statistics.median(share), "peak_bf16": peak,
                    "new_pct_fp32_peak": statistics.median(share32), "peak_fp32": peak32, "load": loads})
if sys.argv[2]:
    with open(sys.argv[2] + ".tmp", "w") as f:
        json.dump({"summary": summary, "records": recs}, f, indent=1)
    import os
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
EOF
