#!/usr/bin/env bash
# Creates .venv with the pinned stack. Idempotent: a second run with nothing to do takes seconds.
# mmcv 2.1.0 is built once from its sdist (two fixes, see docs/get_started.md) and cached outside the repo.
#
# Choices (environment variables; all part of the setup stamp, so changing one re-runs setup):
#   SD_TORCH_VARIANT  default: PyPI's torch wheel (a CUDA 13.0 build: sm_75..sm_120, needs a
#                     CUDA-13 driver); cu126, cu128, ...: that CUDA build from the PyTorch index
#                     (e.g. for V100 = sm_70 or an older driver); cpu: CPU-only wheel.
#   SD_MMCV_CUDA      auto (default): mmcv's CUDA ops iff torch sees a GPU here; 1: build them
#                     without a GPU (a login node), needs nvcc of torch's CUDA major version;
#                     0: CPU ops only.
#   TORCH_CUDA_ARCH_LIST  GPU architectures of mmcv's CUDA ops (default: those torch was built
#                     for), e.g. "8.0;9.0".
#   SD_SETUP_PLAN=1   print what would be installed and built, check nvcc, change nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
MMCV=$(grep '^mmcv==' requirements.txt | cut -d= -f3)
TORCH=$(grep '^torch==' requirements.txt | cut -d= -f3)
PYPI_TORCH_CUDA=13.0  # the CUDA version of PyPI's torch $TORCH Linux wheel
VARIANT=${SD_TORCH_VARIANT:-default}
MMCV_CUDA=${SD_MMCV_CUDA:-auto}

log() { echo "[setup] $*"; }
fail() { echo "[setup] error: $*" >&2; exit 1; }

case "$VARIANT" in
  default) torch_cuda=$PYPI_TORCH_CUDA; index=() ;;
  cpu) torch_cuda=; index=(--index-url https://download.pytorch.org/whl/cpu) ;;
  cu[0-9][0-9]*) digits=${VARIANT#cu}; torch_cuda=${digits%?}.${digits: -1}
                 index=(--index-url "https://download.pytorch.org/whl/$VARIANT") ;;
  *) fail "SD_TORCH_VARIANT=$VARIANT: expected default, cpu or cuXYZ (e.g. cu126)" ;;
esac
case "$MMCV_CUDA" in auto|0|1) ;; *) fail "SD_MMCV_CUDA=$MMCV_CUDA: expected auto, 0 or 1" ;; esac
[ "$MMCV_CUDA" = 1 ] && [ -z "$torch_cuda" ] && \
  fail "SD_MMCV_CUDA=1 with SD_TORCH_VARIANT=cpu: a CPU-only torch cannot run CUDA ops"

# nvcc must match torch's CUDA major version (torch's cpp_extension refuses a mismatch): say so
# now, not after a long build.
check_nvcc() {
  command -v nvcc >/dev/null || fail "building mmcv's CUDA ops needs nvcc (CUDA $torch_cuda) on PATH"
  local release
  release=$(nvcc --version | sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p')
  [ "${release%%.*}" = "${torch_cuda%%.*}" ] || fail "nvcc is CUDA $release, torch $TORCH" \
    "($VARIANT) is built with CUDA $torch_cuda: install CUDA ${torch_cuda%%.*}.x or choose" \
    "SD_TORCH_VARIANT=cu${release/./} (see docs/get_started.md)"
}

plan() {  # the flavour of mmcv ops: needs torch installed for 'auto'
  if [ "$MMCV_CUDA" = 1 ]; then echo cuda
  elif [ "$MMCV_CUDA" = 0 ]; then echo cpu
  elif "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
      2>/dev/null; then echo cuda
  else echo cpu
  fi
}

choices="torch=$TORCH variant=$VARIANT mmcv_cuda=$MMCV_CUDA arch=${TORCH_CUDA_ARCH_LIST:-torch}"
stamp="$VENV/.setup-$( (cat requirements.txt tools/setup_env.sh; echo "$choices") \
  | sha256sum | cut -c1-16)"
if [ "${SD_SETUP_PLAN:-0}" = 1 ]; then
  flavour=$( [ "$MMCV_CUDA" = auto ] && echo "auto (cuda if torch sees a GPU)" || plan)
  build=${torch_cuda:+CUDA $torch_cuda}
  log "plan: torch $TORCH (${build:-CPU only}) ${index[*]:-from PyPI}; mmcv $MMCV ops: $flavour;" \
      "$choices; stamp $stamp"
  if [ "$MMCV_CUDA" = 1 ]; then check_nvcc; log "nvcc matches CUDA $torch_cuda"; fi
  exit 0
fi

if [ -f "$stamp" ]; then
  exit 0
fi

[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
req() { grep "^$1==" requirements.txt; }  # the pinned requirement line of a package
"${PIP[@]}" install -q "$(req setuptools)" wheel ninja

log "installing torch $TORCH ($VARIANT; about a minute when the wheel is local)"
# A variant's index serves torch, torchvision and their dependencies (PyTorch's documented way).
"${PIP[@]}" install -q ${index[@]+"${index[@]}"} "$(req torch)" "$(req torchvision)"
"${PIP[@]}" install -q "$(req setuptools)" "$(req numpy)"

flavour=$(plan)
arch=${TORCH_CUDA_ARCH_LIST:-}
if [ "$flavour" = cuda ]; then
  check_nvcc
  if [ -z "$arch" ]; then  # what torch itself was built for, e.g. sm_80 -> 8.0
    arch=$("$VENV/bin/python" -c "import torch; print(';'.join(sorted({a[3:-1] + '.' + a[-1] \
      for a in torch.cuda.get_arch_list() if a.startswith('sm_')})))")
  fi
fi
key=$( [ "$VARIANT" = default ] && echo "$flavour" || echo "$VARIANT-$flavour")
cache="${XDG_CACHE_HOME:-$HOME/.cache}/sd_transfer/wheels/mmcv-$MMCV-torch$TORCH-$key${arch:+-${arch//[;. ]/_}}"
if ! ls "$cache"/mmcv-*.whl >/dev/null 2>&1; then
  log "building mmcv $MMCV ($flavour ops${arch:+ for $arch}) from source: about 12 minutes on 2" \
      "cores for CPU ops (much longer with CUDA ops), once per machine"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV" -d "$work"
  tar -xzf "$work"/mmcv-$MMCV.tar.gz -C "$work"
  src="$work/mmcv-$MMCV"
  # torch >= 2.6 headers need C++20; mmcv's setup.py hard-codes C++17.
  sed -i "s/-std=c++17/-std=c++20/g" "$src/setup.py"
  grep -q -- '-std=c++20' "$src/setup.py" || { echo "mmcv setup.py patch failed" >&2; exit 1; }
  mkdir -p "$work/out"
  venv_py="$(cd "$VENV" && pwd)/bin/python"
  force=$( [ "$flavour" = cuda ] && echo 1 || echo 0 )
  # Print a heartbeat per 10 compiled files so the long build is visibly alive.
  (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=$force MAX_JOBS=${MAX_JOBS:-2} \
    ${arch:+TORCH_CUDA_ARCH_LIST="$arch"} \
    "$venv_py" -m pip wheel -v --no-build-isolation --no-deps -w "$work/out" . ) 2>&1 \
    | tee "$work/build.log" \
    | { n=0; while IFS= read -r line; do
          case "$line" in *c++*.cpp*|*g++*.cpp*|*nvcc*.cu*)
            n=$((n + 1)); [ $((n % 10)) -eq 0 ] && log "  mmcv: $n files compiled ($(date +%T))";;
          esac
        done; } || true
  if ! ls "$work"/out/mmcv-*.whl >/dev/null 2>&1; then
    echo "[setup] mmcv build failed; last lines of the log:" >&2
    tail -n 40 "$work/build.log" >&2
    exit 1
  fi
  mkdir -p "$cache"
  cp "$work"/out/mmcv-*.whl "$cache"/
  log "cached $(ls "$cache")"
fi
"${PIP[@]}" install -q --force-reinstall --no-deps "$cache"/mmcv-*.whl

log "installing requirements.txt"
"${PIP[@]}" install -q -r requirements.txt
"${PIP[@]}" install -q -e . --no-deps --no-build-isolation

log "checking the stack"
SD_EXPECT_MMCV_OPS=$flavour "$VENV/bin/python" -m sd_transfer.check_stack
rm -f "$VENV"/.setup-*
touch "$stamp"
log "done"
