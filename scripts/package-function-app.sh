#!/usr/bin/env bash
# Builds the handler for Azure's Linux workers and assembles the function app (function-app/ with the binary as
# `handler` at its root) into dist/function-app, or the folder given, ready for
#   cd dist/function-app && func azure functionapp publish <app> --custom
# The binary is linked against glibc 2.28 with cargo-zigbuild, so that it starts on every worker image (their
# oldest glibc is 2.31, Debian 11's); `handler package` checks that, and every function.json, before it copies
# anything. The tools install themselves under target/tools on the first run (scripts/zig-toolchain.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist/function-app}"
eval "$(scripts/zig-toolchain.sh)"
# A build directory of its own: it never waits for, nor invalidates, the host builds (tests run this script).
export CARGO_TARGET_DIR="$PWD/target/function-app"
# Function names stay for backtraces; line tables go: a binary a quarter the size, in every deployment.
export CARGO_PROFILE_DIST_STRIP=debuginfo
# The `dist` profile (fat LTO, one codegen unit): what ships is the build the performance figures are of.
cargo zigbuild --profile dist --locked -p handler --target x86_64-unknown-linux-gnu.2.28
binary="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/dist/handler"
rm -rf "$out"
"$binary" package --out "$out" --binary "$binary"
