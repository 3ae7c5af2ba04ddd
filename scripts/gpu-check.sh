#!/usr/bin/env bash
# One prepared GPU check, for a machine with an NVIDIA GPU and no Rust toolchain. Pack it here with
# scripts/gpu-pack.sh (release binary, kernel + engine + fused test binaries, bench binary), carry .device/
# to the GPU machine, and run:  bash .device/gpu-check.sh
# Stages: devices; kernel suite, engine parity and the fused engine's parity on real CUDA
# (FASTFC_TEST_GPU=cuda: a missing GPU fails); `fastfc bench` and the 108-trial random search with
# the per-op engine and the fused one side by side (times, the ratio, launches per second, share of
# FP32 peak); compute-sanitizer memcheck, racecheck and synccheck on short training runs of both
# engines; the criterion CUDA kernel benchmarks; fastfc search hyperband on cuda, and hyperband and
# random on the CPU, with the CUDA runs' rankings compared to the CPU's within a stated tolerance. Each
# stage's row is printed as it finishes (a timeout loses nothing done), and the summary table
# again last; logs go to $OUT (or .device/out). The whole check is one command within an
# 8-minute budget (GPU_CHECK_BUDGET seconds, default 450): each stage gets what is left.
# It refuses fakecuda (FASTFC_CUDA_DRIVER is cleared, and a device named FAKE stops the check):
# its times are never GPU figures. A tool the machine lacks (compute-sanitizer, python3) makes its
# stages "not-run", which is neither a pass nor a failure.
# GPU_CHECK_EMU=1 is the dry run for machines without a GPU: the same plumbing with the emulated
# executor for the suites, CPU-only searches of a few trials, and the GPU-only stages skipped.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/bin
out=${OUT:-$here/out}
mkdir -p "$out"
# A previous run's logs and studies would be read as this run's figures: start clean.
rm -rf "${out:?}"/*.log "${out:?}"/hb-* "${out:?}"/random-*
export FASTFC_NO_PROGRESS=1
emu=${GPU_CHECK_EMU:-0}
data=()
[ -d "$here/data" ] && data=(--data-dir "$here/data")
unset FASTFC_CUDA_DRIVER
rows=()
fail=0
budget=${GPU_CHECK_BUDGET:-450}
row() {
  rows+=("$(printf '%-34s %-7s %8s  %s' "$1" "$2" "$3" "$4")")
  printf 'ROW %-34s %-7s %8s  %s\n' "$1" "$2" "$3" "$4"
}

# stage NAME TIMEOUT_S CMD... : runs CMD with its output in $out/NAME.log; records status and time.
# The timeout is capped by what is left of the budget; a stage with no time left is not run.
stage() {
  local name=$1 limit=$2; shift 2
  local left=$((budget - SECONDS))
  if [ "$left" -lt 10 ]; then
    last_status=not-run; last_secs=0
    echo "== $name: not run (the ${budget}s budget is spent)" | tee "$out/$name.log"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0=$SECONDS
  echo "== $name: $*"
  echo "== $name: $*" > "$out/$name.log"
  timeout "$limit" "$@" >>"$out/$name.log" 2>&1
  local rc=$?
  last_secs=$((SECONDS - t0))
  if [ $rc -eq 0 ]; then last_status=ok; else last_status="FAIL($rc)"; fail=1; fi
  tail -n 3 "$out/$name.log"
}

# The pack holds the binaries gzipped (what a device run carries is limited): unpack them once.
for z in "$bin"/*.gz; do
  [ -e "$z" ] || continue
  gzip -dc "$z" > "${z%.gz}" && chmod +x "${z%.gz}" && rm -f "$z"
done
for f in fastfc kernels cuda_engine fused bench_main; do
  [ -x "$bin/$f" ] || { echo "missing $bin/$f: run scripts/gpu-pack.sh first"; exit 2; }
done

gpu="none"
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)
elif [ "$emu" != 1 ]; then
  echo "no GPU here (nvidia-smi missing or failing): this check needs one; GPU_CHECK_EMU=1 is the dry run"
  exit 1
fi
echo "GPU: $gpu"

stage devices 60 "$bin/fastfc" devices
row devices "$last_status" "$last_secs" "$(grep -m1 '^cuda' "$out/devices.log" | cut -c1-70)"
if grep -qi 'fake' "$out/devices.log"; then
  echo "refusing: the CUDA driver here is fakecuda (not a GPU); its times are no GPU figures"
  exit 3
fi
peak_gflops=$(grep -m1 -oE 'peak FP32 [0-9.]+ TFLOP/s' "$out/devices.log" | awk '{print $3 * 1000}')
[ -n "$peak_gflops" ] && row "peak FP32 (SMs x lanes x 2 x clock)" ok 0 "$peak_gflops GFLOP/s"

if [ "$emu" = 1 ]; then suite_env=(env -u FASTFC_TEST_GPU); else suite_env=(env FASTFC_TEST_GPU=cuda); fi
stage kernels 300 "${suite_env[@]}" "$bin/kernels"
row "kernel suite" "$last_status" "$last_secs" "$(grep -m1 -oE '[0-9]+ passed; [0-9]+ failed' "$out/kernels.log")"
stage parity 300 "${suite_env[@]}" "$bin/cuda_engine" --nocapture
row "engine parity vs cpu" "$last_status" "$last_secs" "$(grep -m1 -oE '[0-9]+ passed; [0-9]+ failed' "$out/parity.log")"
stage fused 300 "${suite_env[@]}" "$bin/fused" --nocapture
row "fused engine parity vs cpu" "$last_status" "$last_secs" "$(grep -m1 -oE '[0-9]+ passed; [0-9]+ failed' "$out/fused.log")"

# Whole training epochs (train + validation) of a 108-trial cohort, GFLOP/s against the peak, on
# the per-op engine and on the fused one (FASTFC_CUDA_ENGINE), side by side.
if [ "$emu" = 1 ]; then archs=(16,16); else archs=(64,64,64,64 64,64); fi
for arch in "${archs[@]}"; do
  if [ "$emu" = 1 ]; then bench=(--device emu --trials 2 --epochs 1); else bench=(--device cuda --trials 108 --epochs 3); fi
  bench+=(--hidden "$arch")
  for engine in per-op auto; do
    stage "bench-$arch-$engine" 240 env FASTFC_CUDA_ENGINE=$engine "$bin/fastfc" bench --json "${data[@]}" "${bench[@]}"
    fig=$(python3 - "$out/bench-$arch-$engine.log" <<'PY' 2>/dev/null
import json, sys
j = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")][-1]
share = f" = {100 * j['gflops'] / j['peak_gflops']:.2f}% of peak, {j['epoch_seconds'] / j['floor_seconds']:.0f}x the floor" if j.get("peak_gflops") else ""
p = j.get("paths") or {}
print(f"{j['epoch_seconds']:.4f} s/epoch, {j['gflops']:.1f} GFLOP/s{share}, {j['launches_per_epoch']} launches/epoch, fused {p.get('fused')} per-op {p.get('per_op')}")
PY
)
    row "bench $arch $engine" "$last_status" "$last_secs" "${fig:-no result}"
  done
  ratio=$(python3 - "$out/bench-$arch-per-op.log" "$out/bench-$arch-auto.log" <<'PY' 2>/dev/null
import json, sys
a, b = ([json.loads(l) for l in open(p) if l.startswith("{")][-1]["epoch_seconds"] for p in sys.argv[1:])
print(f"per-op {a:.4f} s / fused {b:.4f} s per epoch = {a / b:.2f}x")
PY
)
  row "bench $arch: fused vs per-op" "$([ -n "$ratio" ] && echo ok || echo no-data)" 0 "${ratio:-no result}"
done

if [ "$emu" = 1 ]; then
  hb=(--max-epochs 3 --iterations 1); rnd=(--trials 6 --epochs 1); dev=cpu
else
  hb=(); rnd=(--trials 108 --epochs 10); dev=cuda
fi
search() { # NAME STRATEGY DEVICE ARGS...  (the environment in $senv, if set)
  local name=$1 strat=$2 device=$3; shift 3
  rm -rf "${out:?}/$name"
  stage "$name" 600 env ${senv:-} "$bin/fastfc" search --strategy "$strat" --device "$device" "${data[@]}" --out "$out/$name" "$@"
  local fig
  fig=$(python3 - "$out/$name/summary.json" "$out/$name.log" <<'PY' 2>/dev/null
import json, re, sys
s = json.load(open(sys.argv[1]))
log = open(sys.argv[2]).read()
m = re.search(r"(\d+) kernel launches, (\d+) per second", log)
extra = f", {int(m.group(2)):,} launches/s" if m else ""
m = re.search(r"(cuda engine: (\d+) trial loads fused, (\d+) per-op; )?([0-9.]+) TFLOP trained, ([0-9.]+) GFLOP/s of wall time( = ([0-9.]+)% of peak)?", log)
if m:
    extra += (f", fused {m.group(2)} per-op {m.group(3)}" if m.group(1) else "") + f", {m.group(5)} GFLOP/s" + (f" = {m.group(7)}% of peak" if m.group(7) else "")
print(f"{s['wall_seconds']:.2f} s wall, best val {s['best']['val_accuracy']:.4f}, test {s['test_accuracy']:.4f}{extra}")
PY
)
  row "search $name" "$last_status" "$last_secs" "${fig:-no summary}"
}
# The seed's random search on each engine, same machine, same data, one after the other.
if [ "$emu" = 1 ]; then edev=emu; ernd=(--trials 2 --epochs 1); else edev=cuda; ernd=("${rnd[@]}"); fi
senv="FASTFC_CUDA_ENGINE=per-op" search random-$edev-per-op random $edev "${ernd[@]}"
senv="FASTFC_CUDA_ENGINE=auto" search random-$edev-fused random $edev "${ernd[@]}"
ratio=$(python3 - "$out/random-$edev-per-op/summary.json" "$out/random-$edev-fused/summary.json" <<'PY' 2>/dev/null
import json, sys
a, b = (json.load(open(p))["wall_seconds"] for p in sys.argv[1:])
print(f"per-op {a:.2f} s / fused {b:.2f} s wall = {a / b:.2f}x")
PY
)
row "random search: fused vs per-op" "$([ -n "$ratio" ] && echo ok || echo no-data)" 0 "${ratio:-no result}"
# Then, with what is left of the budget, the sanitizers and the per-kernel benchmarks.
# compute-sanitizer comes from the machine's CUDA toolkit, often installed without being on PATH.
for d in /usr/local/cuda/bin /usr/local/cuda-*/bin /opt/cuda/bin /opt/nvidia/*/bin; do
  [ -d "$d" ] && PATH=$PATH:$d
done
if [ "$emu" != 1 ] && command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck synccheck; do
    # The per-op path (a training run through every op), then a cohort split between both paths.
    for target in "cuda_engine states_round_trip" "fused a_cohort_split"; do
      set -- $target
      fail_before=$fail
      stage "$tool-$1" 120 env FASTFC_TEST_GPU=cuda compute-sanitizer --tool "$tool" --error-exitcode 9 \
        "$bin/$1" "$2" --test-threads 1
      # Some sandboxes (gVisor) run CUDA but refuse the sanitizer: that is no finding about fastfc.
      if [ "$last_status" != ok ] && grep -q "Device not supported" "$out/$tool-$1.log"; then
        last_status=n/a; fail=$fail_before
      fi
      row "sanitizer $tool ($1)" "$last_status" "$last_secs" "$(grep -m1 -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/$tool-$1.log" | cut -c1-60)"
    done
  done
else
  row "compute-sanitizer" not-run 0 "no GPU, or no compute-sanitizer in this machine's toolkit"
fi

stage bench 300 "$bin/bench_main" --bench cuda --warm-up-time 0.5 --measurement-time 2 --noplot
if grep -q 'cuda benchmarks skipped' "$out/bench.log"; then
  row "criterion cuda kernels" skipped "$last_secs" "$(grep -m1 'skipped' "$out/bench.log" | cut -c1-60)"
else
  row "criterion cuda kernels" "$last_status" "$last_secs" "see below"
  # "<id>", then "time: [lo mid hi]" and "thrpt: [lo mid hi]" (FLOP for dense, elements otherwise);
  # dense rows also as a share of the GPU's peak FP32 (from `fastfc devices`).
  while read -r line; do rows+=("  $line"); done < <(awk -v peak="${peak_gflops:-0}" '
    function giga(v, u) { return v * (u ~ /^K/ ? 1e-6 : u ~ /^M/ ? 1e-3 : u ~ /^T/ ? 1e3 : u ~ /^G/ ? 1 : 1e-9) }
    /\/cuda\/t108/ {id=$1}
    /time:/ && id != "" {for (i = 1; i < NF; i++) if ($i ~ /\[/) {t = $(i+2) " " $(i+3); break}}
    /thrpt:/ && id != "" {for (i = 1; i < NF; i++) if ($i ~ /\[/) {
        v = $(i+2); u = $(i+3)
        if (id ~ /^dense/) {
          g = giga(v, u); share = peak > 0 ? sprintf(" = %.2f%% of peak", 100 * g / peak) : ""
          printf "%-32s %s per launch, %.1f GFLOP/s%s\n", id, t, g, share
        } else printf "%-32s %s per launch, %s %s\n", id, t, v, u
        break}; id = ""}' "$out/bench.log")
fi

search hb-$dev hyperband $dev "${hb[@]}"
# On a GPU the fused engine's random search above is the CUDA side of the ranking check.
[ "$emu" = 1 ] && search random-$dev random $dev "${rnd[@]}"
if [ "$emu" != 1 ]; then
  search hb-cpu hyperband cpu
  search random-cpu random cpu "${rnd[@]}"
  # Rankings agree on every pair of trials whose CPU accuracies differ by more than the
  # tolerance: 10 epochs of float differences (FMA, the GPU's expf/erff) move a trial's
  # validation accuracy by a few samples, so near-ties may trade places.
  for s in hb random; do
    gdir=$out/$s-cuda; [ "$s" = random ] && gdir=$out/random-cuda-fused
    cmp=$(python3 - "$gdir/results.csv" "$out/$s-cpu/results.csv" <<'PY' 2>&1
import csv, sys
TOL = 0.005
# A run is (trial, first epoch, last epoch): Hyperband may promote other trials on a GPU when two
# are nearly tied, so only the runs both studies trained are compared.
def acc(p):
    return {(r["trial_id"], r["start_epoch"], r["epochs"]): float(r["val_accuracy"]) for r in csv.DictReader(open(p))}
g, c = acc(sys.argv[1]), acc(sys.argv[2])
common = set(g) & set(c)
if len(common) < len(c) // 2:
    print(f"DIFFERENT runs: only {len(common)} of {len(c)} in both"); sys.exit()
g = {k: g[k] for k in common}; c = {k: c[k] for k in common}
top = sorted(c, key=lambda k: -c[k])[:10]
bad = [(a, b) for i, a in enumerate(top) for b in top[i + 1:] if c[a] - c[b] > TOL and g[a] < g[b]]
mx = max(abs(g[k] - c[k]) for k in c)
print(("top-10 order agrees" if not bad else "ORDER DIFFERS %s" % bad[:3]) + f" ({len(common)} common runs, tolerance {TOL}; max |cuda-cpu| val acc {mx:.4f})")
PY
)
    st=ok; case "$cmp" in top-10*) ;; *) st=DIFF; fail=1;; esac
    row "ranking $s: cuda vs cpu" "$st" 0 "$cmp"
  done
fi

echo
echo "fastfc gpu-check summary | GPU: $gpu | $(date -u +%FT%TZ)"
printf '%-34s %-7s %8s  %s\n' stage status seconds result
printf '%s\n' "${rows[@]}"
exit $fail
