#!/usr/bin/env bash
# Builds for the ARM targets with Debian's cross linkers (.cargo/config.toml) and runs under
# qemu-user the tests that matter on a device: the WAL (crash loop included), the plugin
# contract (hostile guests included; 32-bit ARM runs plugins in Pulley), the shipped plugins,
# and one end-to-end scrape -> WAL -> remote write into a real Prometheus on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

# Both cargo invocations below select the same three packages, so cargo resolves the same
# features for their dependencies and the second reuses the first's build. Selected apart
# (`-p magpie-wal -p magpie-host`, then `-p magpie`), they differ in a few features of shared
# crates (log, smallvec, tokio, ...), and wasmtime with Cranelift was built twice per target.
# The first runs every unit and integration test of the WAL and the host; a test of the same
# name in the collector would be selected too, so names must differ.
suites=()
for f in collector/wal/tests/*.rs collector/host/tests/*.rs; do
  name=$(basename "$f" .rs)
  if [ -e "collector/magpie/tests/$name.rs" ] || [ -d "collector/magpie/tests/$name" ]; then
    echo "cross-test: $f has the name of a test of the collector (collector/magpie/tests/$name)" >&2
    exit 1
  fi
  suites+=(--test "$name")
done
packages=(-p magpie-wal -p magpie-host -p magpie)

for target in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
  case "$target" in
    aarch64-*) runner="qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
    armv7-*) runner="qemu-arm -L /usr/arm-linux-gnueabihf" ;;
  esac
  printf '\n== %s (%(%H:%M:%S)T)\n' "$target" -1
  # Tests that start binaries of their own target need the emulator in front of them.
  export MAGPIE_TEST_RUNNER="$runner" MAGPIE_CRASH_ROUNDS=30 MAGPIE_CRASH_MIN_DELAY_US=300000
  # `--lib` takes the collector's unit tests along (they are quick), but one: qemu-user makes
  # up /proc/self/stat for the emulated process, with its CPU times zero.
  cargo test --target "$target" "${packages[@]}" --lib "${suites[@]}" \
    -- --skip telemetry::tests::process_metrics_are_those_of_this_process
  cargo test --target "$target" "${packages[@]}" --doc
  cargo test --target "$target" "${packages[@]}" --test remote_write -- --exact every_acknowledged_sample_reaches_prometheus
done

# The device build (no compiler) with plugins precompiled on this host.
ci/device-test.sh
