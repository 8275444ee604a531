#!/usr/bin/env bash
# Installs, once, what builds the handler for an older glibc than this machine's: cargo-zigbuild (crates.io)
# and Zig (PyPI's ziglang package, in a virtualenv), both under target/tools, and prints the two lines that put
# them on the PATH:
#   eval "$(scripts/zig-toolchain.sh)"
# With --zig-only, Zig alone (what linking a small C program needs; cargo-zigbuild is a build of its own).
# Concurrent calls (parallel tests) wait for the first under a lock.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$PWD/target/tools"
mkdir -p "$tools"
exec 9>"$tools/.lock"
flock 9
if [ "${1:-}" != --zig-only ] && [ ! -x "$tools/bin/cargo-zigbuild" ]; then
  cargo install --quiet --locked --root "$tools" cargo-zigbuild@0.24.1 >&2
fi
if [ ! -f "$tools/venv/.ziglang" ]; then
  python3 -m venv "$tools/venv" >&2
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check ziglang==0.17.1 >&2
  touch "$tools/venv/.ziglang"
fi
# cargo-zigbuild runs Zig as `python3 -m ziglang` when no `zig` is on the PATH: the virtualenv's python3.
echo "export PATH=\"$tools/bin:$tools/venv/bin:\$PATH\""
echo "unset ZIG_COMMAND"
