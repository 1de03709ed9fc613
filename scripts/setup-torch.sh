#!/usr/bin/env bash
# Installs the PyTorch baseline's Python side (benches/torch/) into the
# ignored virtualenv .venv-torch/: torch, transformers and safetensors from
# PyPI, pinned. Idempotent: an existing, working venv is left as it is.
#
# CPU only at run time, but the download is large (~3 GB, ~5.6 GB on disk):
# PyPI's x86-64 Linux torch wheel is the CUDA build, and it does not import
# without NVIDIA's runtime wheels (`pip install --no-deps torch` then fails at
# `import torch` with "libcublasLt.so.*[0-9] not found"); PyPI carries no
# CPU-only x86-64 Linux wheel (those live on PyTorch's own index, which this
# project does not use). So pip installs the CUDA runtime wheels too; the
# baseline never touches a GPU (every tensor is created on the CPU), and its
# matmuls run in the wheel's bundled MKL / oneDNN.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH="torch==${TORCH_VERSION:-2.15.0}"
TRANSFORMERS="transformers==${TRANSFORMERS_VERSION:-5.23.0}"
VENV=.venv-torch
PYTHON=${PYTHON:-python3}

check() {
  "$VENV/bin/python" - <<'PY'
import torch, transformers, safetensors
print(f"torch {torch.__version__} (MKL {torch.backends.mkl.is_available()}, CPU capability "
      f"{torch.backends.cpu.get_cpu_capability()}), transformers {transformers.__version__}")
PY
}

if [ -x "$VENV/bin/python" ] && check 2>/dev/null; then
  exit 0
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet "$TORCH" "$TRANSFORMERS" "safetensors>=0.4" numpy
check
