#!/usr/bin/env bash
# Set up (if needed) and run the main job on its small built-in default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/millivid demo "$@"
