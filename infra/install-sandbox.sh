#!/usr/bin/env bash
# Installs what the sandbox executor needs, idempotently: bubblewrap (mount/pid/net namespaces),
# libseccomp (the fork server compiles its syscall filter with it through ctypes), util-linux
# (setpriv, prlimit) and the project's Python environment (numpy must import inside the sandbox).
# Usage: infra/install-sandbox.sh   (as root: fresh machines have no bubblewrap)
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v setpriv >/dev/null || missing+=(util-linux)
ldconfig -p | grep -q 'libseccomp\.so\.2' || missing+=(libseccomp2)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

infra/install-python.sh
