#!/usr/bin/env bash
# Scrape cost of the real binary: serves an exposition of N series (node_exporter-like
# names and labels) on loopback, lets magpie scrape it every second for a while, and prints
# CPU seconds per scrape and per 10k samples, from /proc/PID/stat. Needs a release build and
# the plugins (ci/build-plugins.sh); prints a table, asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
series=${1:-10000}
seconds=${2:-30}
. bench/lib.sh

python3 - "$series" > "$work/metrics" <<'PY'
import sys
n = int(sys.argv[1])
print("# TYPE node_network_receive_bytes_total counter")
for i in range(n):
    print(f'node_network_receive_bytes_total{{device="eth{i % 64}",host="gw-{i // 64}",job_part="p{i % 7}"}} {i * 1234.5}')
PY
port=$(free_port)
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work" >/dev/null 2>&1 &
listen=$(free_port)
{ collector_section "$listen"; cat <<TOML; } > "$work/magpie.toml"
[[scrape]]
job = "bench"
plugin = "prom-scrape"
interval = "1s"
timeout = "1s"
targets = ["http://127.0.0.1:$port/metrics"]
TOML
sleep 0.5
$bin run --config "$work/magpie.toml" 2>"$work/log" &
pid=$!
scrapes() { curl -s "127.0.0.1:$listen/metrics" | awk '/^magpie_scrapes_total/ {print $2}'; }
until [ "$(scrapes 2>/dev/null || echo 0)" -ge 2 ] 2>/dev/null; do sleep 0.2; done
s0=$(scrapes); c0=$(cpu_ticks "$pid")
sleep "$seconds"
s1=$(scrapes); c1=$(cpu_ticks "$pid")
rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
fail=$(curl -s "127.0.0.1:$listen/metrics" | awk '/^magpie_scrape_failures_total/ {print $2}')
kill -TERM "$pid"; wait "$pid" || true
hz=$(getconf CLK_TCK)
python3 - "$series" "$s0" "$s1" "$c0" "$c1" "$hz" "$rss" "$fail" <<'PY'
import sys
n, s0, s1, c0, c1, hz, rss, fail = sys.argv[1:]
n, scrapes, ticks, hz = int(n), float(s1) - float(s0), float(c1) - float(c0), float(hz)
cpu = ticks / hz / scrapes
print("| series | scrapes | failed | CPU s per scrape | CPU s per 10k samples | peak RSS MiB |")
print("|---:|---:|---:|---:|---:|---:|")
print(f"| {n} | {scrapes:.0f} | {fail} | {cpu:.4f} | {cpu * 10000 / (n + 3):.4f} | {int(rss) / 1024:.1f} |")
PY
