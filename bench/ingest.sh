#!/usr/bin/env bash
# Ingest throughput per decoder on one core (samples/s through decode, label checks, WAL append
# and flush; no network). Prints a markdown table; asserts nothing.
#   bench/ingest.sh [MESSAGES]        PROFILE=dev bench/ingest.sh  (skips the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
ci/build-plugins.sh >/dev/null
profile=(--release)
[ "${PROFILE:-release}" = dev ] && profile=()
taskset -c 0 cargo run --quiet "${profile[@]}" -p magpie-ingest --example decode_throughput -- target/plugins "${1:-200}"
