#!/usr/bin/env bash
# Builds every plugin under plugins/ (not the test programs) for wasm32-unknown-unknown and
# puts them in target/plugins/<name>.wasm, where a source checkout's magpie finds them.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

plugins=()
for dir in plugins/*/; do
  name=$(basename "$dir")
  [ "$name" = test-programs ] && continue
  [ -f "$dir/Cargo.toml" ] && plugins+=("$name")
done
# One cargo invocation per plugin: features are unified across the packages of a build, and
# the SDK's `guest-runtime` (allocator and panic handler for no_std guests) must not reach a
# plugin that uses std.
for p in "${plugins[@]}"; do
  cargo build --quiet --release --target wasm32-unknown-unknown -p "$p"
done

mkdir -p target/plugins
for p in "${plugins[@]}"; do
  # Replaced only when changed, and by rename: a test or the soak may be reading the old file.
  src="target/wasm32-unknown-unknown/release/${p//-/_}.wasm"
  if ! cmp -s "$src" "target/plugins/$p.wasm"; then
    cp "$src" "target/plugins/.$p.wasm.tmp" && mv "target/plugins/.$p.wasm.tmp" "target/plugins/$p.wasm"
  fi
  printf '%-14s %8d bytes\n' "$p" "$(stat -c %s "target/plugins/$p.wasm")"
done
