#!/usr/bin/env bash
# Installs the CUDA 12 toolchain fastfc's build.rs compiles the kernels with, from NVIDIA's PyPI
# wheels (no GPU, no system toolkit, no root needed): NVRTC (compiles kernels/*.cu to PTX) and
# ptxas (assembles that PTX into one cubin per GPU architecture). It goes into .venv-cuda/ in the
# repository root, where build.rs looks without any environment variable. Idempotent: a second
# run with the toolchain in place does nothing.
#
# Why CUDA 12 and not 13: code built by CUDA 12.x loads on drivers from 525 up (the 535-570
# drivers common on T4 notebooks and clouds); CUDA 13 output needs a 580+ driver.
# Usage: scripts/cuda-toolchain.sh    then: touch kernels && cargo build --release
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=12.2.140
venv=.venv-cuda
have() {
  compgen -G "$venv/lib/python3*/site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12" >/dev/null &&
    compgen -G "$venv/lib/python3*/site-packages/nvidia/cuda_nvcc/bin/ptxas" >/dev/null &&
    [ "$(cat "$venv/cuda-toolchain.version" 2>/dev/null)" = "$VERSION" ]
}
if have; then
  echo "CUDA $VERSION toolchain (NVRTC + ptxas) already in $venv"
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check \
  "nvidia-cuda-nvrtc-cu12==$VERSION" "nvidia-cuda-nvcc-cu12==$VERSION"
echo "$VERSION" > "$venv/cuda-toolchain.version"
have || { echo "cuda-toolchain.sh: NVRTC or ptxas missing after the install" >&2; exit 1; }
echo "CUDA $VERSION toolchain (NVRTC + ptxas) installed in $venv"
