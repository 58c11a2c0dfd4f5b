#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up on a fresh machine, plugin builds, formatting,
# lints (host and wasm32), and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# A CI build starts from nothing and is built once: incremental state would only fill the disk
# (about 4 GiB of target/debug/incremental for the workspace).
export CARGO_INCREMENTAL=0

step() { printf '\n== %s (%(%H:%M:%S)T)\n' "$1" -1; }
# A failing step ends the run: the background jobs (and their cargo or scripts) go with it.
trap 'for p in $(jobs -p); do pkill -P "$p" 2>/dev/null; kill "$p" 2>/dev/null; done; true' EXIT

# The Debian and PyPI packages (the real servers, the cross toolchains) are not needed before
# the tests: they install in the background while the plugins build and the lints run.
step "setup: Rust targets; Debian and PyPI packages in the background"
ci/setup.sh targets
setup_log=$(mktemp)
status_dir=$(mktemp -d)
(s=0; ci/setup.sh packages >"$setup_log" 2>&1 || s=$?; echo "$s" >"$status_dir/setup") &
setup_pid=$!
step "build plugins"
ci/build-plugins.sh
step "fmt"
cargo fmt --all -- --check
step "clippy"
cargo clippy --workspace --all-targets -- -D warnings
# The device build (no compiler): its own code paths, and wasmtime without Cranelift.
cargo clippy --quiet -p magpie --no-default-features --features mqtt -- -D warnings
cargo clippy --quiet -p magpie -p magpie-host --no-default-features --all-targets -- -D warnings
# Plugins one at a time, as they are built (see build-plugins.sh on feature unification).
for dir in plugins/*/ plugins/test-programs/*/; do
  [ -f "$dir/Cargo.toml" ] || continue
  cargo clippy --quiet --target wasm32-unknown-unknown -p "$(sed -n 's/^name = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)" -- -D warnings
done
step "setup: packages (waited for)"
wait "$setup_pid"
cat "$setup_log"
[ "$(cat "$status_dir/setup")" = 0 ] || { echo "setup: failed"; exit 1; }
step "test"
cargo test --workspace --no-run
# The tests mostly wait on real servers and timers (about half a core busy of two): the release
# build of the soak, the quick bench and the package runs beside them, niced so the tests keep
# the CPU when they want it. It has target/release to itself, so no cargo lock is shared.
release_log=$(mktemp)
(s=0; nice -n 19 cargo build --quiet --release -p magpie -p magpie-bench >"$release_log" 2>&1 || s=$?
  echo "$s" >"$status_dir/release") &
release_pid=$!
cargo test --workspace
# The device build's refusal of kubernetes_sd_configs (cargo feature `kubernetes` off).
cargo test --quiet -p magpie --no-default-features --features mqtt --test kubernetes_feature
step "release build (waited for)"
wait "$release_pid"
cat "$release_log"
[ "$(cat "$status_dir/release")" = 0 ] || { echo "release build: failed"; exit 1; }
step "package (.deb, installed into a scratch root)"
ci/package-test.sh
# The soak and the quick bench mostly wait (10k and 1k series every few seconds, receivers
# stopped and started): they run one after the other beside the cross step, which is bound by
# the compiler and qemu. Their release build is done (above), so the two sides never build at
# once (the bench's own build step finds everything built). Beside a compiler, the bench's CPU and
# drain figures read higher than on a quiet machine: they are for information, as below.
step "soak (5 minutes) and quick bench, in the background, beside cross (qemu-user)"
soak_log=$(mktemp)
bench_log=$(mktemp)
(
  s=0; bench/soak.sh --duration 5m >"$soak_log" 2>&1 || s=$?
  echo "$s" >"$status_dir/soak"
  # Figures only, nothing asserted. Fails CI only when the bench cannot run at all (status 3:
  # a process did not start or no data flowed); any other failure is reported and CI goes on.
  s=0; ci/bench.sh --quick >"$bench_log" 2>&1 || s=$?
  echo "$s" >"$status_dir/bench"
) &
background_pid=$!
cross_status=0
ci/cross-test.sh || cross_status=$?
wait "$background_pid"
soak_status=$(cat "$status_dir/soak")
bench_status=$(cat "$status_dir/bench")
step "soak output"
cat "$soak_log"
step "bench (quick) output, run beside the cross step"
cat "$bench_log"
rm -rf "$setup_log" "$release_log" "$soak_log" "$bench_log" "$status_dir"
[ "$cross_status" = 0 ] || { echo "cross: failed with status $cross_status"; exit 1; }
[ "$soak_status" = 0 ] || { echo "soak: failed with status $soak_status"; exit 1; }
case $bench_status in
  0) ;;
  3) echo "bench: could not run"; exit 1 ;;
  *) echo "bench: exited with status $bench_status; figures incomplete" ;;
esac
step "done"
