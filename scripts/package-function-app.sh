#!/usr/bin/env bash
# Builds the Linux x86_64 release binary of the handler and assembles the function app (function-app/ with the
# binary as `handler` at its root) into dist/function-app, or the folder given, ready for
#   cd dist/function-app && func azure functionapp publish <app> --custom
# `handler package` checks every function.json against what the handler expects before it copies anything.
# Set TARGET=x86_64-unknown-linux-musl for a static binary (needs `rustup target add` and musl-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist/function-app}"
target="${TARGET:-x86_64-unknown-linux-gnu}"
cargo build --release --locked -p handler --target "$target"
binary="target/$target/release/handler"
rm -rf "$out"
"$binary" package --out "$out" --binary "$binary"
