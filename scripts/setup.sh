#!/usr/bin/env bash
# Create .venv and install millivid into it (CPU torch 2.13.0 pinned; users with GPUs get the CUDA build).
# EXTRAS: optional dependency groups of pyproject.toml, e.g. EXTRAS=test,metrics (the test command).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q "torch==2.13.0" -e ".${EXTRAS:+[$EXTRAS]}"
