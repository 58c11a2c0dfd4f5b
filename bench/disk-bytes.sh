#!/usr/bin/env bash
# Where magpie's disk writes go: bytes written per sample appended (/proc/PID/io write_bytes,
# the figure ci/bench.sh reports), split by thread (`wal-owner` appends and writes segments,
# `wal-sync` syncs them and writes cursor files), and the segment bytes the WAL itself
# `pwrite`s (strace) per sample. One synth target of N series and the node plugin, both
# every INTERVAL, remote write to a real Prometheus on loopback (or, with OUTAGE=1, to a port
# that refuses connections: the outage figure). Needs a release build, the plugins and strace;
# prints a table, asserts nothing.
# Usage: bench/disk-bytes.sh [SERIES] [SECONDS] [INTERVAL_S]
set -euo pipefail
cd "$(dirname "$0")/.."
series=${1:-10000}
seconds=${2:-40}
interval=${3:-5}
. bench/lib.sh
prom=$(free_port); listen=$(free_port)
target/release/synth serve --series "$series" --port-file "$work/synth.port" &
if [ -n "${OUTAGE:-}" ]; then
  remote=$(free_port) # nothing listens there
else
  start_prometheus "$prom"
  remote=$prom
fi
until [ -s "$work/synth.port" ]; do sleep 0.1; done
{ collector_section "$listen"; cat <<TOML; } > "$work/magpie.toml"
[wal]
max_bytes = "8GiB"
[[scrape]]
job = "synth"
plugin = "prom-scrape"
interval = "${interval}s"
targets = ["http://127.0.0.1:$(cat "$work/synth.port")/metrics"]
[[scrape]]
job = "node"
plugin = "node"
interval = "${interval}s"
[[export]]
name = "central"
plugin = "remote-write"
url = "http://127.0.0.1:$remote/api/v1/write"
TOML
$bin run --config "$work/magpie.toml" 2>"$work/log" &
pid=$!
wait_ready "$listen"
sleep $((4 * interval))
appended() { curl -s "127.0.0.1:$listen/metrics" | awk '$1 ~ /^magpie_wal_samples_appended/ {s += $2} END {print s + 0}'; }
threads() { for t in /proc/"$pid"/task/*; do printf '%s %s\n' "$(cat "$t/comm")" "$(awk '/^write_bytes/ {print $2}' "$t/io")"; done; }
threads > "$work/t0"; a0=$(appended); w0=$(awk '/^write_bytes/ {print $2}' "/proc/$pid/io")
timeout "$seconds" strace -f -p "$pid" -e trace=pwrite64 -y -o "$work/strace" 2>/dev/null || true
threads > "$work/t1"; a1=$(appended); w1=$(awk '/^write_bytes/ {print $2}' "/proc/$pid/io")
n=$((a1 - a0))
[ "$n" -gt 0 ] || { echo "nothing appended" >&2; exit 1; }
seg=$(awk '/\.seg>/ {s += $NF} END {print s + 0}' "$work/strace")
printf '%s series every %s s, %s s, %s samples appended%s\n\n' "$series" "$interval" "$seconds" "$n" "${OUTAGE:+, remote down}"
echo "| bytes per sample appended | B |"
echo "|---|---:|"
awk -v w=$((w1 - w0)) -v n="$n" 'BEGIN {printf "| write_bytes, whole process | %.2f |\n", w / n}'
join <(sort "$work/t0") <(sort "$work/t1") | awk -v n="$n" '$3 > $2 {printf "| write_bytes, thread %s | %.2f |\n", $1, ($3 - $2) / n}'
awk -v s="$seg" -v n="$n" 'BEGIN {printf "| segment bytes the WAL wrote (pwrite) | %.2f |\n", s / n}'
