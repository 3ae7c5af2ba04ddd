#!/usr/bin/env bash
# One epoch (50k train + 10k validation, 8x8, batch 32, [64]x4) in fastfc's CPU engine next to its
# CPU peers, side by side in one run at the same thread count (issue #27):
#   - PyTorch eager, the seed's best model (elu, dropout 0.049, Adam);
#   - PyTorch torch.func vmap over an ensemble of MODELS copies vs `fastfc bench --trials MODELS`
#     (elu, no dropout, Adam), per model-epoch;
#   - scikit-learn's MLPClassifier vs fastfc, both relu, no dropout, Adam.
# Usage: scripts/bench-peers.sh [THREADS] [PYTHON with torch and scikit-learn] [MODELS]
set -euo pipefail
threads=${1:-1}
py=${2:-python3}
models=${3:-8}
. "$(dirname "$0")/peer-setup.sh"
ratio() { "$py" -c 'import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); k=sys.argv[3]; n=b["backend"]; print(f"  {n}: {b[k]:.3f} s | fastfc: {a[k]:.3f} s | fastfc {b[k]/a[k]:.1f}x faster ({k})")' "$1" "$2" "$3"; }
echo "== eager: the seed's best model"
ours=$("$bin" bench --device cpu --threads "$threads" --epochs 5 --json)
theirs=$(OMP_NUM_THREADS=$threads "$py" "$root/benches/torch_epoch.py" "$tmp" --threads "$threads" --epochs 3)
ratio "$ours" "$theirs" epoch_seconds
echo "== torch.func vmap over $models models vs a cohort of $models trials (elu, no dropout)"
ours=$("$bin" bench --device cpu --threads "$threads" --epochs 3 --trials "$models" --dropout 0 --json)
ours=$("$py" -c 'import json,sys; j=json.loads(sys.argv[1]); j["model_epoch_seconds"]=j["epoch_seconds"]/j["trials"]; print(json.dumps(j))' "$ours")
theirs=$(OMP_NUM_THREADS=$threads "$py" "$root/benches/torch_vmap_epoch.py" "$tmp" --threads "$threads" --epochs 2 --models "$models")
ratio "$ours" "$theirs" model_epoch_seconds
echo "== MLPClassifier (relu, no dropout)"
ours=$("$bin" bench --device cpu --threads "$threads" --epochs 5 --activation relu --dropout 0 --json)
theirs=$("$py" "$root/benches/sklearn_epoch.py" "$tmp" --threads "$threads" --epochs 2)
ratio "$ours" "$theirs" epoch_seconds
