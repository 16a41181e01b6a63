#!/usr/bin/env bash
# The main job on a fresh machine: installs what is missing, brings up the local stack (Temporal
# dev server, S3 server, one embedded model server per role, workers for every task queue) and
# runs a short Code-A1 training run on the built-in problems (configs/local.json).
# Usage: infra/main.sh [config.json]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/local.json}

infra/setup.sh
npx code-a1 stack up --with-models --with-workers
eval "$(npx code-a1 stack env)"
# The workers were started a moment ago: the pre-flight of `run` waits for them to poll (they bundle
# the workflow code first) instead of reporting their queues as unserved.
exec npx code-a1 run --config "$config" --wait-for-workers 180
