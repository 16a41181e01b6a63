#!/usr/bin/env bash
# versitygw: the Versity S3 Gateway (Apache-2.0), an S3-protocol server over a POSIX directory, so
# objects are plain files of any size (multipart, conditional puts, ListObjectsV2 pagination).
# Built from the Go module proxy. Prints the binary path.
set -euo pipefail
cache="${CODE_A1_CACHE:-$HOME/.cache/code-a1}"
mkdir -p "$cache"
# The build takes minutes: concurrent callers (setup, stack up, a test) wait for one build.
exec flock "$cache/install-s3.lock" "$(dirname "$0")/install-go-tool.sh" versitygw github.com/versity/versitygw/cmd/versitygw v1.8.0
