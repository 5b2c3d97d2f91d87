#!/usr/bin/env bash
# study_train_times.sh - the default study's unit of work timed with two binaries: one `nfscale --threads 1 train`
# per model at the study's setting (Fashion-MNIST, hold-out 5000, 32 px, batch 128, no augmentation, AGC clip 0.01,
# LR 1.6, near-duplicate removal on; one intra-op thread, as each of the study's two workers runs), alternating the
# binaries (the order flips every repetition). Per run it records the process wall time, its CPU time (user + sys,
# which a shared machine inflates far less than the wall time), the training loop's own seconds (the last metrics
# line) and loop + final evaluation (result.json); prints medians, [min..max] and the paired new/base ratios.
#
#   bench/study_train_times.sh [--base-bin PATH] [--new-bin PATH] [--models "nano-F0 ..."] [--reps N]
#                              [--epochs E] [--threads T] [--json FILE]
#
# Defaults: base build-baseline/3077233/bin/nfscale (bench/compare_builds.sh builds it), new build/bin/nfscale,
# models nano-F0 micro-F0 mini-F0 mini-F1 (the default study's), 3 repetitions, 0.5 epochs, 1 thread.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base_bin="$root/build-baseline/3077233/bin/nfscale"
new_bin="$root/build/bin/nfscale"
models="nano-F0 micro-F0 mini-F0 mini-F1"
reps=3
epochs=0.5
threads=1
json_out=""

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --base-bin) base_bin="$2"; shift 2 ;;
    --new-bin) new_bin="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --json) json_out="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "study_train_times.sh: unknown argument '$1' (see --help)" >&2; usage 2 ;;
  esac
done
[[ "$reps" =~ ^[1-9][0-9]*$ && "$threads" =~ ^[1-9][0-9]*$ ]] || {
  echo "study_train_times.sh: --reps and --threads must be positive whole numbers" >&2; exit 2; }
for b in "$base_bin" "$new_bin"; do
  [ -x "$b" ] || { echo "study_train_times.sh: $b is not an executable (build it, or see --help)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "study_train_times.sh: needs /usr/bin/time (GNU time)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
records="$work/records.jsonl"
: > "$records"

# One run: which (base|new), binary, model, repetition -> one JSON record line.
run_one() {
  local which="$1" bin="$2" m="$3" r="$4" dir="$work/run" load
  rm -rf "$dir"
  load="$(cut -d' ' -f1 /proc/loadavg)"
  /usr/bin/time -f "%e %U %S" -o "$work/time.txt" "$bin" --threads "$threads" train --model "$m" \
    --data fashion-mnist --holdout 5000 --epochs "$epochs" --batch 128 --res 32 --augment false --clip 0.01 --lr 1.6 \
    --dedup on --run-dir "$dir" --quiet > "$work/run.log" 2>&1 || {
      echo "study_train_times.sh: $bin train --model $m failed:" >&2; tail -20 "$work/run.log" >&2; exit 1; }
  python3 - "$dir" "$work/time.txt" "$which" "$m" "$r" "$load" >> "$records" <<'EOF'
import json, sys
d, timef, which, m, r, load = sys.argv[1:]
wall, user, sys_ = map(float, open(timef).read().split()[-3:])
res = json.load(open(d + "/result.json"))
loop = [json.loads(l) for l in open(d + "/metrics.jsonl") if '"type":"train"' in l][-1]["seconds"]
print(json.dumps({"which": which, "model": m, "rep": int(r), "load": float(load), "wall_s": wall,
                  "cpu_s": user + sys_, "loop_s": loop, "loop_eval_s": res["seconds"], "steps": res["steps"],
                  "holdout_loss": res["final_eval"]["holdout"]["loss"]}))
EOF
}

echo "[times] base $base_bin, new $new_bin; $reps alternating reps; --threads $threads, $epochs epochs; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for m in $models; do
  for ((r = 0; r < reps; ++r)); do
    if ((r % 2 == 0)); then
      run_one base "$base_bin" "$m" "$r"; run_one new "$new_bin" "$m" "$r"
    else
      run_one new "$new_bin" "$m" "$r"; run_one base "$base_bin" "$m" "$r"
    fi
  done
  echo "[times] done: $m (load $(cut -d' ' -f1 /proc/loadavg))" >&2
done

python3 - "$records" "$json_out" <<'EOF'
import json, os, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
models = list(dict.fromkeys(r["model"] for r in recs))
def fmt(v):
    return "%.1f [%.1f..%.1f]" % (statistics.median(v), min(v), max(v))
def ratio(base, new, key):  # paired base/new time ratio = speed-up of new
    return [base[i][key] / new[i][key] for i in sorted(new) if i in base]
print("| model | steps | base wall s | new wall s | base CPU s | new CPU s | base loop s | new loop s "
      "| speed-up wall | speed-up CPU | speed-up loop | load |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for m in models:
    sel = [r for r in recs if r["model"] == m]
    base = {r["rep"]: r for r in sel if r["which"] == "base"}
    new = {r["rep"]: r for r in sel if r["which"] == "new"}
    col = lambda d, k: [d[i][k] for i in sorted(d)]
    sp = {k: ratio(base, new, k) for k in ("wall_s", "cpu_s", "loop_s")}
    loads = [r["load"] for r in sel]
    print("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f-%.1f |" % (
        m, sel[0]["steps"], fmt(col(base, "wall_s")), fmt(col(new, "wall_s")), fmt(col(base, "cpu_s")),
        fmt(col(new, "cpu_s")), fmt(col(base, "loop_s")), fmt(col(new, "loop_s")),
        *("**%.2fx** [%.2f..%.2f]" % (statistics.median(v), min(v), max(v)) for v in sp.values()),
        min(loads), max(loads)))
if sys.argv[2]:
    with open(sys.argv[2] + ".tmp", "w") as f:
        json.dump({"records": recs}, f, indent=1)
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
EOF
