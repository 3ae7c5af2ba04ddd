#!/usr/bin/env bash
# One epoch (50k train + 10k validation, 8x8, batch 32, [64]x4) in fastfc's CPU engine next to its
# CPU peers, side by side in one run at the same thread count (issue #27):
#   - PyTorch eager, the seed's best model (elu, dropout 0.049, Adam);
#   - PyTorch torch.func vmap over an ensemble of MODELS copies vs `fastfc bench --trials MODELS`
#     (elu, no dropout, Adam), per model-epoch;
#   - scikit-learn's MLPClassifier vs fastfc, both relu, no dropout, Adam.
# ROUNDS=N (default 1) repeats the three comparisons N times, each peer right after fastfc, and
# ends with each ratio's median and range over the rounds (the VM's speed drifts by ±15% from
# one minute to the next, so one round's ratio can land on either side of a target).
# Usage: [ROUNDS=N] scripts/bench-peers.sh [THREADS] [PYTHON with torch and scikit-learn] [MODELS]
set -euo pipefail
threads=${1:-1}
py=${2:-python3}
models=${3:-8}
rounds=${ROUNDS:-1}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "bench-peers.sh: ROUNDS=$rounds: expected a whole number of rounds, at least 1" >&2; exit 2; }
. "$(dirname "$0")/peer-setup.sh"
# ratio OURS THEIRS KEY NAME: prints the pair and appends the ratio to $tmp/NAME.
ratio() { "$py" -c 'import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); k=sys.argv[3]; n=b["backend"]; r=b[k]/a[k]; print(f"  {n}: {b[k]:.3f} s | fastfc: {a[k]:.3f} s | fastfc {r:.1f}x faster ({k})"); open(sys.argv[4],"a").write(f"{r}\n")' "$1" "$2" "$3" "$tmp/$4"; }
for round in $(seq "$rounds"); do
  [ "$rounds" -gt 1 ] && echo "=== round $round of $rounds"
  echo "== eager: the seed's best model"
  ours=$("$bin" bench --device cpu --threads "$threads" --epochs 5 --json)
  theirs=$(OMP_NUM_THREADS=$threads "$py" "$root/benches/torch_epoch.py" "$tmp" --threads "$threads" --epochs 3)
  ratio "$ours" "$theirs" epoch_seconds eager
  echo "== torch.func vmap over $models models vs a cohort of $models trials (elu, no dropout)"
  ours=$("$bin" bench --device cpu --threads "$threads" --epochs 3 --trials "$models" --dropout 0 --json)
  ours=$("$py" -c 'import json,sys; j=json.loads(sys.argv[1]); j["model_epoch_seconds"]=j["epoch_seconds"]/j["trials"]; print(json.dumps(j))' "$ours")
  theirs=$(OMP_NUM_THREADS=$threads "$py" "$root/benches/torch_vmap_epoch.py" "$tmp" --threads "$threads" --epochs 2 --models "$models")
  ratio "$ours" "$theirs" model_epoch_seconds vmap
  echo "== MLPClassifier (relu, no dropout)"
  ours=$("$bin" bench --device cpu --threads "$threads" --epochs 5 --activation relu --dropout 0 --json)
  theirs=$("$py" "$root/benches/sklearn_epoch.py" "$tmp" --threads "$threads" --epochs 2)
  ratio "$ours" "$theirs" epoch_seconds sklearn
done
if [ "$rounds" -gt 1 ]; then
  echo "== fastfc faster by, median (range) of $rounds rounds"
  for name in eager vmap sklearn; do
    "$py" -c 'import statistics,sys; r=sorted(float(l) for l in open(sys.argv[1])); print(f"  {sys.argv[2]}: {statistics.median(r):.1f}x ({r[0]:.1f}-{r[-1]:.1f}x)")' "$tmp/$name" "$name"
  done
fi
