#!/usr/bin/env bash
# The test command: set up (first run), check the import rule, lint and types, then run the suite (without `slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONDONTWRITEBYTECODE=1
.venv/bin/lint-imports --no-cache
.venv/bin/ruff check .
.venv/bin/mypy evals flywheel
.venv/bin/python -m pytest -m "not slow" -p no:cacheprovider "$@"
