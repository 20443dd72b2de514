#!/usr/bin/env bash
# Set up (if needed) and run the whole CPU test suite plus the linter.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=test,metrics bash scripts/setup.sh
.venv/bin/ruff check millivid tests benchmarks
# one test process per core (pytest-xdist), each torch on one thread: most tests are small and
# bound by Python, so the cores run tests side by side rather than one test's kernels
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
.venv/bin/python -m pytest -p no:cacheprovider -n auto --durations=15 "$@"
