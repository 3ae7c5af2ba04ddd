#!/usr/bin/env bash
# Your own data, measured: a default TPE search (108 trials x 10 epochs) on scikit-learn's
# digits, breast cancer and wine, next to MLPClassifier tuned by RandomizedSearchCV (30
# configurations) on the very same splits (`fastfc data export`).
#   scripts/bench-own-data.sh [OUT=runs/own-data]
# Needs: target/release/fastfc, and a python with scikit-learn ($PYTHON, default
# .venv-sklearn/bin/python; `python3 -m venv .venv-sklearn && .venv-sklearn/bin/pip install scikit-learn pandas`).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/own-data}
py=${PYTHON:-.venv-sklearn/bin/python}
data=$out/sklearn
mkdir -p "$out"
"$py" scripts/sklearn-data.py "$data" >/dev/null
fastfc=target/release/fastfc
printf '%-14s %-28s %8s %8s %8s\n' set tool val_acc test_acc seconds
for set in digits.npz breast_cancer.csv wine.csv; do
  name=${set%.*}
  label=()
  [ "$name" != digits ] && label=(--label target)
  rm -rf "$out/$name" "$out/$name-splits"
  t0=$(date +%s.%N)
  FASTFC_NO_PROGRESS=1 $fastfc search --strategy tpe --device cpu --data "$data/$set" "${label[@]}" \
    --out "$out/$name" >"$out/$name.log" 2>&1
  t1=$(date +%s.%N)
  read -r val test < <("$py" -c "import json,sys; s=json.load(open('$out/$name/summary.json')); print(s['best']['val_accuracy'], s['test_accuracy'])")
  printf '%-14s %-28s %8.4f %8.4f %8.1f\n' "$name" "fastfc tpe 108x10" "$val" "$test" "$(echo "$t1 - $t0" | bc)"
  $fastfc data export --data "$data/$set" "${label[@]}" --out "$out/$name-splits" >/dev/null 2>&1
  "$py" benches/sklearn_mlp.py "$out/$name-splits" >"$out/$name-sklearn.json"
  "$py" -c "import json; s=json.load(open('$out/$name-sklearn.json')); print('%-14s %-28s %8.4f %8.4f %8.1f' % ('$name', 'sklearn MLP RandomizedSearch30', s['val_accuracy'], s['test_accuracy'], s['seconds']))"
done
