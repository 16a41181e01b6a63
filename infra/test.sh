#!/usr/bin/env bash
# The test command: installs what is missing, brings up the local stack (Temporal dev server and
# S3 server) and runs every test suite against it: type check, TypeScript tests, Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."

infra/setup.sh
# Publishing and generation are tested against vLLM's and SGLang's released code (pinned in
# python/requirements-vllm.txt and -sglang.txt), each in its own environment beside .venv.
infra/install-conformance.sh vllm sglang
infra/install-browser.sh   # Chromium, for the test that opens the run report in a browser
npx code-a1 stack up

export TEMPORAL_ADDRESS=127.0.0.1:7233
export CODE_A1_TEST_S3_ENDPOINT=http://127.0.0.1:9100
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true

echo "== type check" >&2
npx tsc --noEmit
echo "== TypeScript tests" >&2
npm test
echo "== Python tests" >&2
.venv/bin/python -m pytest python/tests -q --timeout=1200
