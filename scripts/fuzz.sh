#!/usr/bin/env bash
# Fuzzes every parser of user files with cargo-fuzz (libFuzzer, nightly Rust):
#   scripts/fuzz.sh [SECONDS_PER_TARGET=180] [TARGET...]
# `--build-only` builds the targets and runs nothing (what CI does). Findings land in
# fuzz/artifacts/TARGET/; each one fixed gets a regression test in tests/fuzz_regressions.rs.
# Needs: a nightly toolchain (rustup) and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=0
if [ "${1:-}" = "--build-only" ]; then build_only=1; shift; fi
secs=${1:-180}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(csv npz npy idx space journal)
# The parsers need no kernels: build without the CUDA toolchain even where CI requires it.
export FASTFC_CUDA_TOOLCHAIN=none FASTFC_REQUIRE_KERNELS=
if [ $build_only = 1 ]; then
  for t in "${targets[@]}"; do cargo +nightly fuzz build --fuzz-dir fuzz "$t"; done
  echo "fuzz: built ${targets[*]}"
  exit 0
fi
mkdir -p fuzz/corpus
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  seeds="fuzz/seeds/$t"
  echo "== fuzz $t for ${secs}s"
  cargo +nightly fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" $( [ -d "$seeds" ] && echo "$seeds" ) -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536 2>&1 \
    | grep -E '^(#[0-9]+ +DONE|Done|==|SUMMARY|artifact_prefix|Test unit written)' || true
done
