#!/usr/bin/env bash
# The fixed cost of a running magpie: CPU seconds over a window, wakeups (context switches of
# all its threads) per second and RSS, in two set-ups:
#   idle   the built-in default configuration (`magpie run`: the node plugin every 15 s)
#   idle-device  the device build (`target/device/magpie`: `cargo build --profile device -p magpie
#          --no-default-features --features mqtt`) on the same configuration, loading node.cwasm
#          precompiled and signed by the release build (MAGPIE_COMPILER), as a device does
#   n1k    a target of 1000 series scraped every 5 s by prom-scrape, remote write into a real
#          Prometheus on loopback (the quick side-by-side bench's magpie set-up)
# The window starts after WARMUP seconds (the start-up compile is not in it). Prints one line of
# figures and, with SMAPS=1, where the resident memory is (smaps, by mapping); asserts nothing.
# Usage: bench/fixed-cost.sh idle|idle-device|n1k [SECONDS=300] [WARMUP=30]
# MAGPIE_BIN runs another binary, MAGPIE_PLUGINS another plugin directory (both absolute), so
# that two builds can be compared side by side at the same load.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: bench/fixed-cost.sh idle|idle-device|n1k [SECONDS] [WARMUP]}
seconds=${2:-300}
warmup=${3:-30}
plugins=${MAGPIE_PLUGINS:-$PWD/target/plugins}
[ "$mode" = idle-device ] && MAGPIE_BIN=${MAGPIE_BIN:-target/device/magpie}
compiler=${MAGPIE_COMPILER:-$PWD/target/release/magpie}
. bench/lib.sh
root=$PWD
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
listen=$(free_port)
cd "$work"
case $mode in
  idle)
    # The built-in default finds its plugins in ./target/plugins.
    mkdir target && ln -s "$plugins" target/plugins
    "$bin" run --listen "127.0.0.1:$listen" 2>"$work/log" &
    ;;
  idle-device)
    # The built-in default's one scrape job, its plugin precompiled for this machine and signed
    # by a build host's key that the device trusts (an unsigned .cwasm is refused).
    mkdir plugins
    "$compiler" key generate --out "$work/fleet" >/dev/null
    "$compiler" plugin compile --target "$(uname -m)-unknown-linux-gnu" "$plugins/node.wasm" plugins/node.cwasm >/dev/null
    "$compiler" plugin sign --key "$work/fleet" plugins/node.cwasm >/dev/null
    cat > magpie.toml <<TOML
[collector]
plugin_dir = "$work/plugins"
data_dir = "$work/data"
listen = "127.0.0.1:$listen"
[trust]
keys = ["$work/fleet.pub"]
[[scrape]]
job = "node"
plugin = "node"
interval = "15s"
TOML
    "$bin" run --config magpie.toml 2>"$work/log" &
    ;;
  n1k)
    target=$(free_port); prom=$(free_port)
    python3 "$root/bench/exposition.py" "$target" 1000 counters &
    start_prometheus "$prom"
    cat > magpie.toml <<TOML
[collector]
plugin_dir = "$plugins"
data_dir = "$work/data"
listen = "127.0.0.1:$listen"
[[scrape]]
job = "bench"
plugin = "prom-scrape"
interval = "5s"
targets = ["http://127.0.0.1:$target/metrics"]
[[export]]
name = "central"
plugin = "remote-write"
url = "http://127.0.0.1:$prom/api/v1/write"
TOML
    "$bin" run --config magpie.toml 2>"$work/log" &
    ;;
  *) echo "fixed-cost: unknown set-up $mode (idle, idle-device or n1k)" >&2; exit 2 ;;
esac
pid=$!
wait_ready "$listen" 0.1
sleep "$warmup"
kill -0 "$pid" || { echo "fixed-cost: magpie exited: $(tail -3 "$work/log")" >&2; exit 3; }
# Context switches of every thread: each is a wakeup from a sleep or a preemption.
switches() { cat /proc/"$pid"/task/*/status 2>/dev/null | awk '/_ctxt_switches/ {s += $2} END {print s}'; }
appended() {
  curl -s "127.0.0.1:$listen/metrics" | awk '$1 == "magpie_wal_samples_appended_total" {printf "%d\n", $2}'
}
c0=$(cpu_ticks "$pid"); s0=$(switches); a0=$(appended); t0=$EPOCHREALTIME
rss=()
for ((i = 0; i < seconds; i += 5)); do
  sleep 5
  rss+=("$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")")
done
c1=$(cpu_ticks "$pid"); s1=$(switches); a1=$(appended); t1=$EPOCHREALTIME
threads=$(ls "/proc/$pid/task" | wc -l)
[ -n "${SMAPS:-}" ] && cp "/proc/$pid/smaps" "$work/smaps"
python3 - "$mode" "$c0" "$c1" "$s0" "$s1" "$a0" "$a1" "$t0" "$t1" "$(getconf CLK_TCK)" "$threads" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" "${rss[@]}" <<'PY'
import statistics, sys
mode, c0, c1, s0, s1, a0, a1, t0, t1, hz, threads, load, *rss = sys.argv[1:]
secs = float(t1) - float(t0)
cpu = (int(c1) - int(c0)) / int(hz)
samples = int(a1) - int(a0)
per = f"{cpu / samples * 1e6:.2f}" if samples else "-"
print(f"{mode}: window {secs:.0f} s, CPU {cpu:.2f} s, CPU s per 1M samples appended {per} ({samples}), "
      f"wakeups {(int(s1) - int(s0)) / secs:.1f}/s, RSS median {statistics.median(int(r) for r in rss) / 1024:.1f} MiB, "
      f"threads {threads}, load {load}")
PY
if [ -n "${SMAPS:-}" ]; then
  # Resident memory by mapping: the heap, the binary, other anonymous memory, libraries.
  awk '/^[0-9a-f]+-[0-9a-f]+ / {name = (NF >= 6 ? $6 : "[anon]") " " $2} /^Rss:/ {r[name] += $2}
       END {for (n in r) if (r[n] >= 64) printf "%8.2f MiB  %s\n", r[n] / 1024, n}' "$work/smaps" | sort -rn
fi
kill -TERM "$pid"; wait "$pid" || true
