#!/usr/bin/env bash
# Creates the project's Python environment (.venv) from the pinned requirement files, idempotently.
# Usage: infra/install-python.sh [requirements-file ...]   (default: python/requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(python/requirements.txt)

# pyenv shims cost ~150 ms per start and can point elsewhere later: resolve the real interpreter.
python=$(python3 -c 'import sys; print(sys.executable)')
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.installed
want=$(cat "${files[@]}" | sha256sum | cut -d' ' -f1)
have=$(cat "$stamp.${want}" 2>/dev/null || true)
if [ "$have" != ok ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check $(printf -- '-r %s ' "${files[@]}")
  echo ok > "$stamp.${want}"
fi
