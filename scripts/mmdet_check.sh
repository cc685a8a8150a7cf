#!/usr/bin/env bash
# The full mmdet path of acsl (docs/ARCHITECTURE.md, "mmdet integration"), on the CPU:
#
#   scripts/mmdet_check.sh [all|setup|build|train]     (default: all)
#
#   setup  a separate venv, $MMDET_VENV (.venv-mmdet, git-ignored), for mmdet 3.3, mmengine and the full
#          mmcv. It reuses the torch, torchvision and other packages of the project venv $BASE_VENV (.venv)
#          through a .pth file, so the mmcv wheel is built against exactly that torch and the CUDA build of
#          torch is not installed twice; without a base venv it installs acsl's dependencies itself.
#   build  mmcv 2.1.0 (the newest mmdet 3.3 accepts) from source, once, into wheels/mmcv/torch-<version>/
#          (git-ignored; reused while torch stays the same version). No wheel exists for recent torch, and
#          the source builds against it only with C++20 instead of its C++17, setuptools < 81 and no build
#          isolation. CPU ops only. About 32 minutes on 2 cores.
#   train  `acsl data generate --profile smoke --root data`, then scripts/mmdet_check.py: mmdet's Faster
#          R-CNN R50-FPN on that benchmark for a bounded number of CPU iterations, the softmax baseline and
#          then ACSL stage 2, each evaluated by acsl.LVISMetric (a few minutes).
#
# Environment: PYTHON (an interpreter to create venvs with when there is no base venv), BASE_VENV,
# MMDET_VENV, BASELINE_ITERS (60), STAGE2_ITERS (40), WORK_DIR (build/mmdet_check).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STEP=${1:-all}
BASE_VENV=${BASE_VENV:-.venv}
MMDET_VENV=${MMDET_VENV:-.venv-mmdet}
PY=$MMDET_VENV/bin/python
MMCV_VERSION=2.1.0
export PIP_DISABLE_PIP_VERSION_CHECK=1

setup() {
  if [ ! -x "$PY" ]; then
    if [ -x "$BASE_VENV/bin/python" ]; then "$BASE_VENV/bin/python" -m venv "$MMDET_VENV"
    else "${PYTHON:-python3}" -m venv "$MMDET_VENV"; fi
  fi
  local site
  site=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  if [ -x "$BASE_VENV/bin/python" ] && "$BASE_VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
    # A plain path line: the base venv's own .pth files (its editable acsl) stay inactive here.
    "$BASE_VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > "$site/acsl_base_venv.pth"
  else
    "$PY" -m pip install --quiet "$ROOT"
  fi
  "$PY" -m pip install --quiet "setuptools<81" wheel ninja "mmengine>=0.10,<1" "mmdet>=3.3,<3.4"
}

wheel_dir() {
  echo "$ROOT/wheels/mmcv/torch-$("$PY" -c 'import torch; print(torch.__version__)')"
}

build() {
  local wheels
  wheels=$(wheel_dir)
  if ls "$wheels"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1; then
    echo "mmcv $MMCV_VERSION: reusing $(ls "$wheels"/mmcv-$MMCV_VERSION-*.whl)"
  else
    local src=$ROOT/build/mmcv-src
    rm -rf "$src" && mkdir -p "$src" "$wheels"
    "$PY" -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation -d "$src" "mmcv==$MMCV_VERSION"
    tar -xzf "$src/mmcv-$MMCV_VERSION.tar.gz" -C "$src"
    sed -i 's/-std=c++1[47]/-std=c++20/g' "$src/mmcv-$MMCV_VERSION/setup.py"
    grep -q -- "-std=c++20" "$src/mmcv-$MMCV_VERSION/setup.py" || { echo "setup.py: no C++ standard flag to raise" >&2; exit 1; }
    echo "building mmcv $MMCV_VERSION (CPU ops) against torch $("$PY" -c 'import torch; print(torch.__version__)') ..."
    local started=$SECONDS
    CUDA_VISIBLE_DEVICES="" FORCE_CUDA=0 MMCV_WITH_OPS=1 MAX_JOBS=$(nproc) \
      "$PY" -m pip wheel --no-build-isolation --no-deps -w "$wheels" "$src/mmcv-$MMCV_VERSION"
    echo "mmcv built in $((SECONDS - started)) s: $(ls "$wheels")"
  fi
  "$PY" -m pip install --quiet --no-deps --force-reinstall "$wheels"/mmcv-$MMCV_VERSION-*.whl
  "$PY" -c "import mmcv, mmcv.ops, mmdet.models; print('mmcv', mmcv.__version__, 'with compiled ops; mmdet models import')"
}

train() {
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  "$PY" -m acsl data generate --profile smoke --root data
  "$PY" scripts/mmdet_check.py --work-dir "${WORK_DIR:-build/mmdet_check}" \
    --baseline-iters "${BASELINE_ITERS:-60}" --stage2-iters "${STAGE2_ITERS:-40}"
}

case $STEP in
  setup) setup ;;
  build) build ;;
  train) train ;;
  all) setup; build; train ;;
  *) echo "usage: $0 [all|setup|build|train]" >&2; exit 2 ;;
esac
