#!/usr/bin/env bash
# One epoch of the seed's best model ([64,64,64,64], elu, Adam, dropout 0.049, batch 32, 8x8,
# 50k train + 10k validation) in fastfc and in PyTorch eager, side by side in one run, at the same
# thread count. Usage: scripts/bench-vs-torch.sh [THREADS] [PYTHON]
set -euo pipefail
threads=${1:-1}
py=${2:-python3}
. "$(dirname "$0")/peer-setup.sh"
ours=$("$bin" bench --threads "$threads" --epochs 5 --json)
set +e
theirs=$(OMP_NUM_THREADS=$threads "$py" "$root/benches/torch_epoch.py" "$tmp" --threads "$threads" --epochs 3)
rc=$?
set -e
echo "fastfc : $ours"
if [ $rc -ne 0 ]; then echo "pytorch: skipped (not installed for $py)"; exit 0; fi
echo "pytorch: $theirs"
"$py" - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"epoch seconds: fastfc {a['epoch_seconds']:.3f} | pytorch {b['epoch_seconds']:.3f} | "
      f"fastfc is {b['epoch_seconds'] / a['epoch_seconds']:.1f}x faster")
PY
