#!/usr/bin/env bash
# Download, on a machine with a package registry, the wheels scripts/gpu_check.sh needs besides torch
# and torchvision, for the GPU machines' Python 3.12 on x86-64 Linux, into wheels/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -m pip download --quiet --dest wheels --only-binary=:all: --python-version 3.12 \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  tqdm pandas pillow numpy
du -sh wheels
