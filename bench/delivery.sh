#!/usr/bin/env bash
# Delivery under an outage, with the real binary and a real Prometheus on loopback:
#  1. scrape N changing series every second while the receiver is down, for OUTAGE seconds;
#  2. SIGTERM magpie with the receiver still down and time its exit;
#  3. start magpie again and the receiver, and time the drain of the backlog.
# Prints a table; asserts nothing. Needs a release build and the plugins (ci/build-plugins.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
series=${1:-2000}
outage=${2:-60}
. bench/lib.sh

target=$(free_port); prom=$(free_port); listen=$(free_port)
python3 bench/exposition.py "$target" "$series" gauges &
{ collector_section "$listen"; cat <<TOML; } > "$work/magpie.toml"
[[scrape]]
job = "bench"
plugin = "prom-scrape"
interval = "1s"
targets = ["http://127.0.0.1:$target/metrics"]
[[export]]
name = "central"
plugin = "remote-write"
url = "http://127.0.0.1:$prom/api/v1/write"
TOML
metric() { curl -s "127.0.0.1:$listen/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

$bin run --config "$work/magpie.toml" 2>>"$work/log" &
pid=$!; wait_ready "$listen"
sleep "$outage"
backlog=$(metric 'magpie_exporter_backlog_samples{exporter="central"}')
t0=$(date +%s.%N); kill -TERM "$pid"; wait "$pid" || true; t1=$(date +%s.%N)

$bin run --config "$work/magpie.toml" 2>>"$work/log" &
pid=$!; wait_ready "$listen"
start_prometheus "$prom"
d0=$(date +%s.%N)
while :; do
  b=$(metric 'magpie_exporter_backlog_samples{exporter="central"}')
  # Scraping goes on during the drain; "drained" is the backlog down to one scrape's worth.
  if [ "${b%.*}" -le "$((series + 3))" ]; then break; fi
  sleep 0.05
done
d1=$(date +%s.%N)
kill -TERM "$pid"; wait "$pid" || true
python3 - "$series" "$outage" "$backlog" "$t0" "$t1" "$d0" "$d1" <<'PY'
import sys
n, outage, backlog, t0, t1, d0, d1 = sys.argv[1:]
backlog, shut, drain = float(backlog), float(t1) - float(t0), float(d1) - float(d0)
print("| series | outage s | backlog samples | shutdown s (remote down) | drain s | drain samples/s |")
print("|---:|---:|---:|---:|---:|---:|")
print(f"| {n} | {outage} | {backlog:.0f} | {shut:.3f} | {drain:.2f} | {backlog / drain:.0f} |")
PY
