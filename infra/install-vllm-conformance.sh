#!/usr/bin/env bash
# Creates .venv-vllm, where python/conformance/vllm_server.py runs vLLM's released code without a
# GPU, idempotently (a stamp keyed by the requirements file's hash).
# Usage: infra/install-vllm-conformance.sh   (after infra/install-python.sh python/requirements.txt
#        python/requirements-models.txt: torch comes from .venv)
# Everything is installed with --no-deps: vllm declares its whole CUDA stack (torch==2.14, flashinfer,
# nvidia-*, ...), gigabytes that the server never imports. The requirements file pins what it does.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=python/requirements-vllm.txt

if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  echo "install-vllm-conformance: .venv has no torch; run infra/install-python.sh python/requirements.txt python/requirements-models.txt first" >&2
  exit 1
fi

# The same interpreter as .venv: its site-packages (torch's compiled modules) must load here.
python=$(.venv/bin/python -c 'import sys, os; print(os.path.realpath(sys.executable))')
if [ ! -x .venv-vllm/bin/python ]; then
  "$python" -m venv .venv-vllm
fi
stamp=.venv-vllm/.installed
want=$(sha256sum "$requirements" | cut -d' ' -f1)
have=$(cat "$stamp.${want}" 2>/dev/null || true)
if [ "$have" != ok ]; then
  .venv-vllm/bin/pip install --quiet --disable-pip-version-check --no-deps -r "$requirements"
  echo ok > "$stamp.${want}"
fi

# torch (and the nvidia-* libraries its wheel loads), numpy, tokenizers and the rest of the model
# stack come from .venv. A .pth line is appended to sys.path after this environment's own
# site-packages, so the versions pinned here win over .venv's (transformers differs).
own=$(.venv-vllm/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
base=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$(realpath "$base")" > "$own/code_a1_base_venv.pth"
