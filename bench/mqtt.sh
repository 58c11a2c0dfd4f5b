#!/usr/bin/env bash
# MQTT figures: bytes per sample of each encoding of the `mqtt` plugin, and publish throughput
# (samples/s) at QoS 0 and QoS 1 against a local Mosquitto on a loopback port.
# Prints a table; asserts nothing. Needs mosquitto (ci/setup.sh installs it).
# Built with the release profile, as shipped.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release -p magpie --example mqtt_bench
