#!/usr/bin/env bash
# Search quality, 5 seeds per strategy, on the embedded 8x8 Fashion-MNIST and the CPU engine:
# best validation accuracy (mean and range), the chosen model's test accuracy, epochs trained,
# wall time and the strategy's own share of it. Prints a markdown table for BENCHMARKS.md.
#
#   scripts/bench-search.sh                       # tpe bohb hyperband random, seeds 1-5 (add asha)
#   STRATEGIES="tpe bohb" SEEDS="1 2" scripts/bench-search.sh   # reruns those, keeps the others
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
OUT=${OUT:-runs/bench-search}
STRATEGIES=${STRATEGIES:-"tpe bohb hyperband random"}
SEEDS=${SEEDS:-"1 2 3 4 5"}
export FASTFC_NO_PROGRESS=1 FASTFC_NO_SYSTEM_DATA=1
mkdir -p "$OUT"
# A copy, so that a rebuild during the (long) run does not change the binary under it.
cp target/release/fastfc "$OUT/fastfc"
BIN=$OUT/fastfc
for s in $STRATEGIES; do
  for seed in $SEEDS; do
    case $s in
      tpe) args=(--strategy tpe --trials 108 --epochs 10) ;;
      random) args=(--strategy random --trials 108 --epochs 10) ;;
      bohb) args=(--strategy bohb --max-epochs 10 --factor 3 --iterations 2) ;;
      hyperband) args=(--strategy hyperband --max-epochs 10 --factor 3 --iterations 2) ;;
      # 68 configurations: rungs of 2, 4, 10 epochs cost at most 68·2 + 22·2 + 7·6 = 222 epochs,
      # Hyperband 10/3/2's budget (240 at most).
      asha) args=(--strategy asha --trials 68 --max-epochs 10 --factor 3) ;;
      *) echo "unknown strategy $s" >&2; exit 2 ;;
    esac
    rm -rf "${OUT:?}/$s-$seed"
    "$BIN" search "${args[@]}" --seed "$seed" --device cpu --out "$OUT/$s-$seed" > "$OUT/$s-$seed.log"
  done
done
python3 - "$OUT" $STRATEGIES <<'PY'
import json, re, sys, statistics as st
out, strategies = sys.argv[1], sys.argv[2:]
print("| strategy | seeds | best val_accuracy: mean (range) | test accuracy of the chosen model: mean (range) | epochs trained | wall s (mean) | strategy's own time |")
print("| --- | --- | --- | --- | --- | --- | --- |")
import glob
for s in strategies:
    rows = []
    for f in sorted(glob.glob(f"{out}/{s}-*/summary.json")):
        j = json.load(open(f))
        log = open(f.replace("/summary.json", ".log")).read()
        m = re.search(r"spent ([0-9.]+)s proposing \(([0-9.]+)% of the wall time\)", log)
        rows.append((j["best"]["val_accuracy"], j["test_accuracy"], j["epochs_trained"], j["wall_seconds"], float(m.group(2)) if m else 0.0))
    v = [r[0] for r in rows]; t = [r[1] for r in rows]
    print(f"| {s} | {len(rows)} | {st.mean(v):.4f} ({min(v):.4f}–{max(v):.4f}) | {st.mean(t):.4f} ({min(t):.4f}–{max(t):.4f}) | {st.mean(r[2] for r in rows):.0f} | {st.mean(r[3] for r in rows):.1f} | {max(r[4] for r in rows):.2f}% (max) |")
PY
