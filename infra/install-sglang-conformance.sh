#!/usr/bin/env bash
# Creates .venv-sglang, where python/conformance/sglang_server.py runs SGLang's released code without
# a GPU, idempotently (a stamp keyed by the requirements file's hash).
# Usage: infra/install-sglang-conformance.sh   (after infra/install-python.sh python/requirements.txt
#        python/requirements-models.txt: torch comes from .venv)
# Everything is installed with --no-deps: sglang declares its whole CUDA serving stack (flashinfer,
# sglang-kernel, torch==2.14.1, ...), gigabytes that the routes we exercise never import. The
# requirements file pins what they do import.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=python/requirements-sglang.txt

has_torch='import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'
if ! .venv/bin/python -c "$has_torch" 2>/dev/null; then
  echo "install-sglang-conformance: .venv has no torch; first run" \
    "infra/install-python.sh python/requirements.txt python/requirements-models.txt" >&2
  exit 1
fi

# The same interpreter as .venv: its site-packages (torch's compiled modules) must load here.
python=$(.venv/bin/python -c 'import sys, os; print(os.path.realpath(sys.executable))')
if [ ! -x .venv-sglang/bin/python ]; then
  "$python" -m venv .venv-sglang
fi
stamp=.venv-sglang/.installed
want=$(sha256sum "$requirements" | cut -d' ' -f1)
have=$(cat "$stamp.${want}" 2>/dev/null || true)
if [ "$have" != ok ]; then
  .venv-sglang/bin/pip install --quiet --disable-pip-version-check --no-deps -r "$requirements"
  echo ok > "$stamp.${want}"
fi

# torch (and the nvidia-* libraries its wheel loads) come from .venv. A .pth line is appended to
# sys.path after this environment's own site-packages, so the versions pinned here win over .venv's
# (transformers, tokenizers, huggingface-hub differ).
own=$(.venv-sglang/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
base=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$(realpath "$base")" > "$own/code_a1_base_venv.pth"
