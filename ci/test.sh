#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up on a fresh machine, plugin builds, formatting,
# lints (host and wasm32), and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s (%(%H:%M:%S)T)\n' "$1" -1; }

step "setup"
ci/setup.sh
step "build plugins"
ci/build-plugins.sh
step "fmt"
cargo fmt --all -- --check
step "clippy"
cargo clippy --workspace --all-targets -- -D warnings
wasm_crates=()
for dir in plugins/*/ plugins/test-programs/*/; do
  [ -f "$dir/Cargo.toml" ] && wasm_crates+=(-p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)")
done
cargo clippy --target wasm32-unknown-unknown -p magpie-sdk "${wasm_crates[@]}" -- -D warnings
step "test"
cargo test --workspace
step "done"
