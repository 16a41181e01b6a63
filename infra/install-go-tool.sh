#!/usr/bin/env bash
# Builds a Go command from the module proxy into the project's binary cache, unless a binary
# built from the same module version is already there. Prints the binary's path.
# Usage: infra/install-go-tool.sh <name> <module/cmd/path> <version> [ldflags]
set -euo pipefail
name=$1 pkg=$2 version=$3 ldflags=${4:-}
bin_dir="${CODE_A1_CACHE:-$HOME/.cache/code-a1}/bin"
target="$bin_dir/$name-$version"
if [ ! -x "$target" ]; then
  mkdir -p "$bin_dir"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "building $pkg@$version (first time only; cached in $bin_dir)" >&2
  GOBIN="$tmp" GOFLAGS="-trimpath -buildvcs=false" go install -ldflags="-s -w $ldflags" "$pkg@$version" >&2
  # Moved into place only once complete, so an interrupted build is never taken for a finished one.
  mv "$tmp/$name" "$target"
fi
echo "$target"
