#!/usr/bin/env bash
# Creates .venv with the pinned stack. Idempotent: a second run with nothing to do takes seconds.
# mmcv 2.1.0 is built once from its sdist (two fixes, see README) and cached outside the repo.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
MMCV=$(grep '^mmcv==' requirements.txt | cut -d= -f3)
TORCH=$(grep '^torch==' requirements.txt | cut -d= -f3)
stamp="$VENV/.setup-$(cat requirements.txt tools/setup_env.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  exit 0
fi

log() { echo "[setup] $*"; }
[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
req() { grep "^$1==" requirements.txt; }  # the pinned requirement line of a package
"${PIP[@]}" install -q "$(req setuptools)" wheel ninja

log "installing torch $TORCH (about a minute when the wheel is local)"
"${PIP[@]}" install -q "$(req setuptools)" "$(req torch)" "$(req torchvision)" "$(req numpy)"

if "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  flavour=cuda
else
  flavour=cpu
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/sd_transfer/wheels/mmcv-$MMCV-torch$TORCH-$flavour"
if ! ls "$cache"/mmcv-*.whl >/dev/null 2>&1; then
  log "building mmcv $MMCV ($flavour ops) from source: about 12 minutes on 2 cores, once per machine"
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
  # Print a heartbeat per 10 compiled files so the long build is visibly alive.
  (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} \
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
"${PIP[@]}" install -q "$cache"/mmcv-*.whl

log "installing requirements.txt"
"${PIP[@]}" install -q -r requirements.txt
"${PIP[@]}" install -q -e . --no-deps --no-build-isolation

log "checking the stack"
"$VENV/bin/python" -m sd_transfer.check_stack
rm -f "$VENV"/.setup-*
touch "$stamp"
log "done"
