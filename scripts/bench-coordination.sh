#!/usr/bin/env bash
# What sharing a study through PostgreSQL costs, on this machine (BENCHMARKS.md, "Coordination"):
#  1. the 108-configuration random search (10 epochs, CPU engine, embedded data) as one process
#     with 2 threads and the file journal, then as 2 processes (`search --storage` + `worker`) of
#     1 thread each sharing one study: wall times and their ratio, run side by side;
#  2. criterion: one cohort's claim + record round trip (cohorts of 1 and 8), and a study of
#     10,000 recorded runs;
#  3. `fastfc report --storage` on those 10,000 runs, 5 times;
#  4. ASHA (68 configurations, rungs 2/4/10, seed 1) as one process with 2 threads, then as 2
#     workers of 1 thread each: wall time, epochs and best validation accuracy.
# Uses FASTFC_TEST_PG's server, or starts a private one (scripts/pg-start.sh).
#   scripts/bench-coordination.sh            # all three;  PARTS="1" for the first only
set -euo pipefail
cd "$(dirname "$0")/.."
PARTS=${PARTS:-"1 2 3 4"}
OUT=${OUT:-runs/bench-coordination}
if [ -z "${FASTFC_TEST_PG:-}" ]; then
  eval "$(scripts/pg-start.sh)"
  trap 'scripts/pg-stop.sh "$FASTFC_TEST_PG_DATA"' EXIT
fi
admin=$FASTFC_TEST_PG
db() { local head=${admin%%\?*}; local q=${admin#*\?}; [ "$q" = "$admin" ] && q=""; echo "${head%/*}/$1${q:+?$q}"; }
fresh() { psql "$admin" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"; }
cargo build --release --quiet
mkdir -p "$OUT"
cp target/release/fastfc "$OUT/fastfc"
BIN=$OUT/fastfc
export FASTFC_NO_PROGRESS=1 FASTFC_NO_SYSTEM_DATA=1
search=(--strategy random --trials 108 --epochs 10 --seed 42 --device cpu)
now() { date +%s.%N; }
if [[ " $PARTS " == *" 1 "* ]]; then
  fresh fastfc_bench_coord
  url=$(db fastfc_bench_coord)
  rm -rf "$OUT/one" "$OUT/shared"
  t0=$(now)
  "$BIN" search "${search[@]}" --threads 2 --out "$OUT/one" > "$OUT/one.log" 2>&1
  t1=$(now)
  "$BIN" search "${search[@]}" --threads 1 --cohort-size 4 --storage "$url" --study coord \
      --out "$OUT/shared" > "$OUT/shared-search.log" 2>&1 &
  s=$!
  until psql "$url" -tAc "SELECT 1 FROM fastfc_studies WHERE name = 'coord'" 2>/dev/null | grep -q 1; do sleep 0.02; done
  "$BIN" worker --storage "$url" --study coord --threads 1 --cohort-size 4 > "$OUT/shared-worker.log" 2>&1
  wait $s
  t2=$(now)
  python3 - "$t0" "$t1" "$t2" "$OUT" <<'PY'
import sys, json
t0, t1, t2 = map(float, sys.argv[1:4]); out = sys.argv[4]
one, two = t1 - t0, t2 - t1
a = json.load(open(f"{out}/one/summary.json")); b = json.load(open(f"{out}/shared/summary.json"))
print(f"| 1 process, 2 threads, file journal | {one:.1f} s | best val_accuracy {a['best']['val_accuracy']:.4f} |")
print(f"| 2 workers x 1 thread, one PostgreSQL study | {two:.1f} s | best val_accuracy {b['best']['val_accuracy']:.4f} |")
print(f"ratio (2 workers / 1 process): {two / one:.3f}")
PY
  grep -h "recorded\|this process trained" "$OUT/shared-worker.log" "$OUT/shared-search.log"
fi
if [[ " $PARTS " == *" 2 "* || " $PARTS " == *" 3 "* ]]; then
  fresh fastfc_bench_rt
  url=$(db fastfc_bench_rt)
fi
if [[ " $PARTS " == *" 2 "* ]]; then
  FASTFC_BENCH_PG=$url cargo bench --bench shared_study 2>&1 | grep -E "claim\+record|time:|report-10k|not run"
fi
if [[ " $PARTS " == *" 3 "* ]]; then
  for i in 1 2 3 4 5; do
    t0=$(now)
    "$BIN" report --storage "$url" --study report-10k --out "$OUT/report-10k" > "$OUT/report.log"
    t1=$(now)
    python3 -c "print(f'report --storage, 10,000 runs: {$t1 - $t0:.2f} s')"
  done
fi
if [[ " $PARTS " == *" 4 "* ]]; then
  fresh fastfc_bench_asha
  url=$(db fastfc_bench_asha)
  asha=(--strategy asha --trials 68 --max-epochs 10 --factor 3 --seed 1 --device cpu)
  rm -rf "$OUT/asha-one" "$OUT/asha-shared"
  t0=$(now)
  "$BIN" search "${asha[@]}" --threads 2 --out "$OUT/asha-one" > "$OUT/asha-one.log" 2>&1
  t1=$(now)
  "$BIN" search "${asha[@]}" --threads 1 --cohort-size 4 --storage "$url" --study asha \
      --out "$OUT/asha-shared" > "$OUT/asha-search.log" 2>&1 &
  s=$!
  until psql "$url" -tAc "SELECT 1 FROM fastfc_studies WHERE name = 'asha'" 2>/dev/null | grep -q 1; do sleep 0.02; done
  "$BIN" worker --storage "$url" --study asha --threads 1 --cohort-size 4 > "$OUT/asha-worker.log" 2>&1
  wait $s
  t2=$(now)
  python3 - "$t0" "$t1" "$t2" "$OUT" <<'PY'
import sys, json
t0, t1, t2 = map(float, sys.argv[1:4]); out = sys.argv[4]
for name, secs in (("asha-one", t1 - t0), ("asha-shared", t2 - t1)):
    s = json.load(open(f"{out}/{name}/summary.json"))
    print(f"| {name} | {secs:.1f} s | {s['runs']} runs, {s['epochs_trained']} epochs | best val_accuracy {s['best']['val_accuracy']:.4f} | test {s['test_accuracy']:.4f} |")
PY
  grep -h "recorded\|this process trained" "$OUT/asha-worker.log" "$OUT/asha-search.log"
fi
