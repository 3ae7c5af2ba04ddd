#!/usr/bin/env bash
# Builds everything scripts/gpu-check.sh needs into .device/ (ignored by git), for a GPU machine
# without a Rust toolchain: the release binary, the kernel, engine and fused-engine test binaries, the criterion
# bench binary (all stripped and gzipped), and the check script itself: about 45 MB, at most 60 MiB.
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
cargo test --release --no-run --message-format=json --test kernels --test cuda_engine --test fused 2>/dev/null \
  | exes kernels cuda_engine fused > "$out/tests.txt"
cargo bench --no-run --message-format=json --bench bench_main 2>/dev/null | exes bench_main > "$out/bench.txt"
cat "$out/tests.txt" "$out/bench.txt" | while read -r name path; do
  objcopy --strip-all "$path" "$out/bin/$name"
done
objcopy --strip-all target/release/fastfc "$out/bin/fastfc"
# Gzipped (gpu-check.sh unpacks them): each binary embeds the 8x8 data, and five of them raw would
# pass the 60 MiB.
gzip -9 "$out"/bin/*
cp scripts/gpu-check.sh "$out/"
# No IDX files: the binaries embed the real Fashion-MNIST at 8x8 (what the checks train on), and
# the 30 MB of IDX files would take the pack past the 60 MiB a device run may carry.
rm -f "$out/tests.txt" "$out/bench.txt"
du -sh "$out" && ls -la "$out/bin"
# The device machine takes at most 64 MiB with a command; the pack stays within 60 MiB.
mib=$(du -sm "$out" | cut -f1)
if [ "$mib" -gt 60 ]; then
  echo "gpu-pack: $out is $mib MiB, over the 60 MiB a device run may carry" >&2
  exit 1
fi
