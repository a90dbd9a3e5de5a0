#!/usr/bin/env bash
# Creates the MLServer baseline environment for the serving benchmark.
#
# MLServer cannot share driftloop's environment (its fastapi and numpy pins
# differ), so it gets its own virtualenv. scikit-learn is pinned to the version
# driftloop trains with, so the pickled sentiment pipeline loads unchanged;
# xgboost-cpu avoids the 469 MB CUDA NCCL wheel that plain xgboost pulls.
# uvloop stays below 0.22: from 0.22 on, asyncio.get_event_loop() raises in a
# fresh process, and MLServer 1.7.1's inference-pool workers die at start
# ("There is no current event loop"), so every model load hangs.
# Idempotent: a stamp file records the spec of a finished install.
#
# usage: scripts/setup-mlserver.sh [VENV_DIR]   (default .venv-mlserver)
set -euo pipefail

VENV="${1:-.venv-mlserver}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
STAMP="$VENV/.mlserver-installed"
SPEC=(mlserver==1.7.1 mlserver-mlflow==1.7.1 mlflow==3.17.2 "uvloop<0.22")

# Versions the driftloop environment trained the models with.
DRIFTLOOP_PY="${DRIFTLOOP_PY:-.venv/bin/python}"
sklearn_pin="scikit-learn"
xgboost_pin="xgboost-cpu"
if [ -x "$DRIFTLOOP_PY" ]; then
  v=$("$DRIFTLOOP_PY" -c 'import sklearn; print(sklearn.__version__)' 2>/dev/null || true)
  [ -n "$v" ] && sklearn_pin="scikit-learn==$v"
  v=$("$DRIFTLOOP_PY" -c 'import xgboost; print(xgboost.__version__)' 2>/dev/null || true)
  [ -n "$v" ] && xgboost_pin="xgboost-cpu==$v"
fi

WANT="${SPEC[*]} $sklearn_pin $xgboost_pin"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && "$VENV/bin/mlserver" --help >/dev/null 2>&1; then
  echo "MLServer environment ready: $VENV"
  exit 0
fi

echo "creating MLServer environment in $VENV (about 80-120 s)"
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
# (grep drops pip's notices about missing local index folders on this machine)
"$VENV/bin/pip" install --quiet --upgrade pip 2>&1 | { grep -v "is ignored: it is neither" || true; }
"$VENV/bin/pip" install --quiet "${SPEC[@]}" "$sklearn_pin" "$xgboost_pin" 2>&1 \
  | { grep -v "is ignored: it is neither" || true; }
"$VENV/bin/mlserver" --help >/dev/null
echo "$WANT" > "$STAMP"
echo "MLServer environment ready: $VENV ($("$VENV/bin/pip" show mlserver | grep ^Version))"
