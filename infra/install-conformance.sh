#!/usr/bin/env bash
# Creates .venv-<server> for each server named (default: vllm sglang), where
# python/conformance/<server>_server.py runs that server's released code without a GPU; idempotent
# (a stamp keyed by the requirements file's hash).
# Usage: infra/install-conformance.sh [vllm] [sglang]   (after infra/install-python.sh
#        python/requirements.txt python/requirements-models.txt: torch comes from .venv)
# Everything is installed with --no-deps: vllm and sglang declare their whole CUDA serving stacks
# (torch 2.14, flashinfer, nvidia-*, sglang-kernel, ...), gigabytes that the code we exercise never
# imports. python/requirements-<server>.txt pins what it does import.
set -euo pipefail
cd "$(dirname "$0")/.."
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(vllm sglang)

has_torch='import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'
if ! .venv/bin/python -c "$has_torch" 2>/dev/null; then
  echo "install-conformance: .venv has no torch; first run" \
    "infra/install-python.sh python/requirements.txt python/requirements-models.txt" >&2
  exit 1
fi
# The same interpreter as .venv: its site-packages (torch's compiled modules) must load here.
python=$(.venv/bin/python -c 'import sys, os; print(os.path.realpath(sys.executable))')
base=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

for server in "${servers[@]}"; do
  requirements=python/requirements-$server.txt
  venv=.venv-$server
  [ -f "$requirements" ] || { echo "install-conformance: no $requirements (servers: vllm, sglang)" >&2; exit 2; }
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  stamp=$venv/.installed
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ "$(cat "$stamp.${want}" 2>/dev/null || true)" != ok ]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
    echo ok > "$stamp.${want}"
  fi
  # torch (and the nvidia-* libraries its wheel loads) and the rest of the model stack come from
  # .venv. A .pth line is appended to sys.path after this environment's own site-packages, so the
  # versions pinned here win over .venv's (transformers, tokenizers, huggingface-hub differ).
  own=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$(realpath "$base")" > "$own/code_a1_base_venv.pth"
done
