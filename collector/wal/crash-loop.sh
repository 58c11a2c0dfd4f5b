#!/usr/bin/env bash
# Runs the WAL crash loop for many rounds (default 1000): a child appends, syncs and
# acknowledges, is SIGKILLed at a random moment, and the WAL is reopened and checked.
# Usage: collector/wal/crash-loop.sh [ROUNDS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/../.."
export MAGPIE_CRASH_ROUNDS="${1:-1000}"
export MAGPIE_CRASH_SEED="${2:-$(date +%s)}"
exec cargo test -p magpie-wal --release --test crash -- --nocapture
