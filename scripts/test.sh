#!/usr/bin/env bash
# Set up (if needed) and run the whole CPU test suite plus the linter.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=test,metrics bash scripts/setup.sh
.venv/bin/ruff check millivid tests benchmarks
.venv/bin/python -m pytest -p no:cacheprovider --durations=15 "$@"
