#!/usr/bin/env bash
# gofakes3: an S3-protocol server with conditional puts, ListObjectsV2 pagination and a persistent
# bolt backend (MIT). Built from the Go module proxy. Prints the binary path.
set -euo pipefail
exec "$(dirname "$0")/install-go-tool.sh" gofakes3 github.com/johannesboyne/gofakes3/cmd/gofakes3 v1.2.0
