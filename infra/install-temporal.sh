#!/usr/bin/env bash
# The real Temporal dev server (CLI v1.5.1, SQLite persistence, Schedules), built from the Go
# module proxy. v1.5.1 is the newest release whose go.mod has no `replace` directive: later ones
# replace a local cliext module, which `go install pkg@version` refuses. Prints the binary path.
set -euo pipefail
here=$(dirname "$0")
for version in v1.5.1 v1.5.0 v1.4.1; do
  if "$here/install-go-tool.sh" temporal github.com/temporalio/cli/cmd/temporal "$version" \
      "-X github.com/temporalio/cli/temporalcli.Version=${version#v}"; then
    exit 0
  fi
  echo "temporal $version did not build; trying an older release" >&2
done
exit 1
