#!/usr/bin/env bash
# Builds everything scripts/gpu-check.sh needs into .device/ (ignored by git), for a GPU machine
# without a Rust toolchain: the release binary, the kernel and engine test binaries, the criterion
# bench binary (all stripped of debug info), the check script itself, and the Fashion-MNIST IDX
# files when GPU_PACK_DATA=1 (30 MB; without them the binary's embedded 8x8 copy is used).
# Usage: scripts/gpu-pack.sh   then on the GPU machine: bash .device/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=.device
rm -rf "$out" && mkdir -p "$out/bin"
scripts/cuda-toolchain.sh
export FASTFC_REQUIRE_KERNELS=1
cargo build --release --quiet
# Test and bench executables, located through cargo's JSON messages.
exes() {
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in sys.argv[1:]:
        print(m["target"]["name"], m["executable"])' "$@"
}
cargo test --release --no-run --message-format=json --test kernels --test cuda_engine 2>/dev/null \
  | exes kernels cuda_engine > "$out/tests.txt"
cargo bench --no-run --message-format=json --bench bench_main 2>/dev/null | exes bench_main > "$out/bench.txt"
cat "$out/tests.txt" "$out/bench.txt" | while read -r name path; do
  objcopy --strip-debug "$path" "$out/bin/$name"
done
objcopy --strip-debug target/release/fastfc "$out/bin/fastfc"
cp scripts/gpu-check.sh "$out/"
if [ "${GPU_PACK_DATA:-0}" = 1 ]; then
  mkdir -p "$out/data" && cp /usr/share/datasets/fashion-mnist/*-ubyte.gz "$out/data/"
fi
rm -f "$out/tests.txt" "$out/bench.txt"
du -sh "$out" && ls -la "$out/bin"
