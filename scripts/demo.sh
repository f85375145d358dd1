#!/usr/bin/env bash
# The main job: set up (first run), then `flywheel demo` on the embedded defaults. Extra args go to `flywheel demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/flywheel demo "$@"
