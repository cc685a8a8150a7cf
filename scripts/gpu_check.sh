#!/usr/bin/env bash
# The bounded GPU check of issue 5 (about 3 minutes on one H100; at most 8). Run from anywhere on a
# GPU machine with torch and torchvision installed and no internet:
#
#   scripts/gpu_wheels.sh      # here, once: the few other packages as wheels in wheels/ (git-ignored)
#   scripts/gpu_check.sh       # there, with wheels/ copied along
#
# It installs what is missing from wheels/ only (never from the network), then runs scripts/gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ -d wheels ]; then
  "$PYTHON" -m pip install --quiet --no-index --find-links wheels tqdm pandas pillow numpy 2>&1 | grep -v "^WARNING" || true
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
timeout 470 "$PYTHON" scripts/gpu_check.py "$@"
