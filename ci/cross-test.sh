#!/usr/bin/env bash
# Builds for the ARM targets with Debian's cross linkers (.cargo/config.toml) and runs under
# qemu-user the tests that matter on a device: the WAL (crash loop included), the plugin
# contract (hostile guests included; 32-bit ARM runs plugins in Pulley), the shipped plugins,
# and one end-to-end scrape -> WAL -> remote write into a real Prometheus on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

for target in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
  case "$target" in
    aarch64-*) runner="qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
    armv7-*) runner="qemu-arm -L /usr/arm-linux-gnueabihf" ;;
  esac
  printf '\n== %s (%(%H:%M:%S)T)\n' "$target" -1
  # Tests that start binaries of their own target need the emulator in front of them.
  export MAGPIE_TEST_RUNNER="$runner" MAGPIE_CRASH_ROUNDS=30 MAGPIE_CRASH_MIN_DELAY_US=300000
  cargo test --target "$target" -p magpie-wal -p magpie-host
  cargo test --target "$target" -p magpie --test remote_write -- --exact every_acknowledged_sample_reaches_prometheus
done

# The device build (no compiler) with plugins precompiled on this host.
ci/device-test.sh
