#!/usr/bin/env bash
# Footprint of the real binary at the targets' load: node + prom-scrape + remote-write loaded,
# one target serving N series (node_exporter-like, values change every scrape), scraped every
# INTERVAL, remote write to a real Prometheus on loopback. Prints idle RSS (before the first
# scrape of the big target), steady RSS (median of 1 s samples over the second half of the
# run), peak RSS (VmHWM) and CPU seconds per 1M samples appended, from /proc/PID. Needs a
# release build and the plugins (ci/build-plugins.sh); prints a table, asserts nothing.
# Usage: bench/footprint.sh [SERIES] [SECONDS] [INTERVAL_S]; MAGPIE_BIN runs another binary
# (or a wrapper such as perf record), FOOTPRINT_SMAPS=FILE keeps /proc/PID/smaps at the end.
# FOOTPRINT_DEVICE=1 runs the device build (target/device/magpie, no compiler) on the three
# plugins precompiled and signed by the release build, as a device loads them.
set -euo pipefail
cd "$(dirname "$0")/.."
series=${1:-10000}
seconds=${2:-60}
interval=${3:-5}
. bench/lib.sh
target=$(free_port); prom=$(free_port); listen=$(free_port)

python3 bench/exposition.py "$target" "$series" counters &
start_prometheus "$prom"
if [ -n "${FOOTPRINT_DEVICE:-}" ]; then
  bin=${MAGPIE_BIN:-target/device/magpie}
  mkdir "$work/plugins"
  target/release/magpie key generate --out "$work/fleet" >/dev/null
  for p in node prom-scrape remote-write; do
    target/release/magpie plugin compile --target "$(uname -m)-unknown-linux-gnu" \
      "target/plugins/$p.wasm" "$work/plugins/$p.cwasm" >/dev/null
    target/release/magpie plugin sign --key "$work/fleet" "$work/plugins/$p.cwasm" >/dev/null
  done
  collector_section() {
    printf '[collector]\nplugin_dir = "%s"\ndata_dir = "%s"\nlisten = "127.0.0.1:%s"\n[trust]\nkeys = ["%s"]\n' \
      "$work/plugins" "$work/data" "$1" "$work/fleet.pub"
  }
fi
{ collector_section "$listen"; cat <<TOML; } > "$work/magpie.toml"
[[scrape]]
job = "node"
plugin = "node"
interval = "${interval}s"
[[scrape]]
job = "bench"
plugin = "prom-scrape"
interval = "${interval}s"
timeout = "${interval}s"
targets = ["http://127.0.0.1:$target/metrics"]
[[export]]
name = "central"
plugin = "remote-write"
url = "http://127.0.0.1:$prom/api/v1/write"
TOML
# Sums a metric over its label sets.
metric() { curl -s "127.0.0.1:$listen/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {printf "%d\n", s}'; }
# MAGPIE_MALLOC: GLIBC_TUNABLES for magpie only, e.g. glibc.malloc.trim_threshold=131072.
GLIBC_TUNABLES=${MAGPIE_MALLOC-} $bin run --config "$work/magpie.toml" 2>"$work/log" &
pid=$!
wait_ready "$listen" 0.05
idle=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
# Warm up: two scrapes of the big target.
until [ "$(metric magpie_scrapes_total)" -ge 4 ]; do sleep 0.2; kill -0 "$pid"; done
a0=$(metric magpie_wal_samples_appended_total); c0=$(cpu_ticks "$pid")
rss=()
for ((i = 0; i < seconds; i++)); do
  sleep 1
  rss+=("$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")")
done
a1=$(metric magpie_wal_samples_appended_total); c1=$(cpu_ticks "$pid")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
sent=$(metric magpie_exporter_sent_samples_total)
fail=$(metric magpie_scrape_failures_total)
cp "/proc/$pid/smaps" "${FOOTPRINT_SMAPS:-/dev/null}" 2>/dev/null || true
kill -TERM "$pid"; wait "$pid" || true
python3 - "$series" "$interval" "$idle" "$hwm" "$a0" "$a1" "$c0" "$c1" "$(getconf CLK_TCK)" "$sent" "$fail" "${rss[@]}" <<'PY'
import statistics, sys
n, iv, idle, hwm, a0, a1, c0, c1, hz, sent, fail, *rss = sys.argv[1:]
rss = [int(x) for x in rss]
steady = statistics.median(rss[len(rss) // 2:])
samples = float(a1) - float(a0)
cpu = (float(c1) - float(c0)) / float(hz)
print("| series | interval s | idle RSS MiB | steady RSS MiB | peak RSS MiB | samples | CPU s per 1M samples | sent | scrape failures |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
print(f"| {n} | {iv} | {int(idle) / 1024:.1f} | {steady / 1024:.1f} | {int(hwm) / 1024:.1f} | {samples:.0f} | {cpu / samples * 1e6:.2f} | {float(sent):.0f} | {fail} |")
PY
