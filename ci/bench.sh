#!/usr/bin/env bash
# Side-by-side benchmark of magpie, Prometheus in agent mode and vmagent on this machine.
#
#   ci/bench.sh            full run: N = 1k, 10k, 100k series (about 30 minutes)
#   ci/bench.sh --quick    N = 1k, short phases, 30 s outage (under 5 minutes)
#
# Every agent scrapes its own copy of the same synthetic target (bench/synth, `synth serve`)
# every BENCH_INTERVAL seconds and remote-writes through its own byte-counting proxy
# (`synth proxy`) to one Prometheus receiver (--web.enable-remote-write-receiver) on loopback.
# Each agent adds an `agent` external label, so the receiver tells their samples apart.
#
# Per N, three phases:
#  1. steady, one agent at a time: RSS (median VmRSS, VmHWM), CPU (utime+stime) per 1M
#     samples delivered (the receiver's appended-samples counter), disk write_bytes per sample
#     scraped, wire bytes per sample delivered (request bytes through the proxy);
#  2. outage, all agents at once (their proxies refuse connections; the receiver stays up):
#     bytes written to disk and growth of the agent's buffer (its data dir; for magpie the
#     ring's data, `magpie_wal_data_bytes`) per sample scraped during the
#     outage (for magpie the log also shows those bytes by thread, and its data dir's files at
#     both ends of the outage), then each agent's
#     remote comes back in turn and the drain time is measured (until the receiver holds the
#     agent's last outage scrape);
#  3. restart during an outage, all agents at once: remote down, agent SIGTERMed (the time to
#     exit is the shutdown time with the remote down) and started again, remote up; the share
#     of the outage's samples the receiver ends up with.
# "Samples scraped" are counted by the target (its scrape log x series per scrape), so no
# agent's own counters are trusted. Prints one markdown table per N; asserts no figure. Exits
# with status 3 when something does not start or no data flows.
#
# Environment (defaults for the full run; --quick changes the ones marked *):
#   BENCH_SERIES*="1000 10000 100000"  BENCH_INTERVAL=5  BENCH_WARMUP*=15  BENCH_STEADY*=45
#   BENCH_OUTAGE*="1000:60 10000:300 100000:60"  (per N, or one number for all)
#   BENCH_RESTART_OUTAGE*=40  BENCH_DRAIN_TIMEOUT*=240  BENCH_AGENTS="magpie prometheus vmagent"
#   BENCH_NODE_AT=10000 (the N whose row also loads the node collector)  BENCH_KEEP=1 keeps the
#   temp dir  BENCH_SYNTH=path of a prebuilt synth binary.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

quick=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument $arg" >&2; exit 2 ;;
  esac
done
if [ "$quick" = 1 ]; then
  : "${BENCH_SERIES:=1000}" "${BENCH_WARMUP:=5}" "${BENCH_STEADY:=20}" "${BENCH_OUTAGE:=30}"
  : "${BENCH_RESTART_OUTAGE:=10}" "${BENCH_DRAIN_TIMEOUT:=90}"
fi
series_list=${BENCH_SERIES:-1000 10000 100000}
interval=${BENCH_INTERVAL:-5}
warmup=${BENCH_WARMUP:-15}
steady=${BENCH_STEADY:-45}
outage_spec=${BENCH_OUTAGE:-1000:60 10000:300 100000:60}
restart_outage=${BENCH_RESTART_OUTAGE:-40}
drain_timeout=${BENCH_DRAIN_TIMEOUT:-240}
agents=${BENCH_AGENTS:-magpie prometheus vmagent}
node_at=${BENCH_NODE_AT:-10000}
hz=$(getconf CLK_TCK)

# Exit status 3: the bench could not run (something did not start, or no data flowed).
die() { echo "bench: $*" >&2; exit 3; }
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
now() { echo "$EPOCHREALTIME"; }

# --- tools ---------------------------------------------------------------------------------
for tool in prometheus curl; do command -v "$tool" >/dev/null || die "$tool not found (ci/setup.sh installs it)"; done
case " $agents " in *" vmagent "*) command -v vmagent >/dev/null || die "vmagent not found (Debian package victoria-metrics)";; esac
# Always build: a stale release binary would measure old code (a no-op when up to date).
case " $agents " in *" magpie "*)
  log "building the release magpie and the plugins"
  { ci/build-plugins.sh >/dev/null && cargo build --quiet --release -p magpie; } || die "the build failed";;
esac
synth=${BENCH_SYNTH:-}
if [ -z "$synth" ]; then
  cargo build --quiet --release -p magpie-bench || die "the build of synth failed"
  synth=$root/target/release/synth
fi

# --- processes and clean-up -----------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/magpie-bench.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
wait_file() { # FILE SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do [ -s "$1" ] && return 0; sleep 0.1; done
  return 1
}
wait_http() { # URL SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  return 1
}
alive() { kill -0 "$1" 2>/dev/null; }

# --- the receiver -------------------------------------------------------------------------
rport=$(free_port)
mkdir -p "$work/receiver"
cat > "$work/receiver/prometheus.yml" <<YAML
global:
  scrape_interval: 1h
storage:
  tsdb:
    # Agents may send a backlog out of order across shards; accept it rather than count it
    # as lost.
    out_of_order_time_window: 2h
YAML
prometheus --config.file="$work/receiver/prometheus.yml" --storage.tsdb.path="$work/receiver/data" \
  --web.listen-address="127.0.0.1:$rport" --web.enable-remote-write-receiver \
  --storage.tsdb.retention.time=1d --log.level=warn 2>"$work/receiver/log" &
pids+=($!)
wait_http "http://127.0.0.1:$rport/-/ready" 60 || die "the receiver did not start: $(tail -3 "$work/receiver/log")"

# query PROMQL [TIME] -> the first value of an instant query, 0 when empty.
query() {
  local args=(--data-urlencode "query=$1")
  [ -n "${2:-}" ] && args+=(--data-urlencode "time=$2")
  local v
  v=$(curl -sf --max-time 30 --get "http://127.0.0.1:$rport/api/v1/query" "${args[@]}" |
    sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p')
  echo "${v:-0}"
}
# Samples the receiver appended (in order and out of order), from its own /metrics.
appended() {
  curl -sf "http://127.0.0.1:$rport/metrics" |
    awk '/^prometheus_tsdb_head_(out_of_order_)?samples_appended_total/ {s += $NF} END {printf "%.0f\n", s}'
}

# --- per-agent helpers --------------------------------------------------------------------
# Each agent A of a round has $dir/A/{synth.port,synth.log,proxy.port,proxy.stats,down,data}.
declare -A pid node_series
start_fixtures() { # DIR N
  local a d
  for a in $agents; do
    d=$1/$a; mkdir -p "$d"
    "$synth" serve --series "$2" --port-file "$d/synth.port" --log "$d/synth.log" 2>/dev/null &
    pids+=($!)
    "$synth" proxy --upstream "127.0.0.1:$rport" --port-file "$d/proxy.port" --stats "$d/proxy.stats" \
      --down-file "$d/down" &
    pids+=($!)
    if ! wait_file "$d/synth.port" 10 || ! wait_file "$d/proxy.port" 10; then die "synth did not start"; fi
    touch "$d/synth.log"
  done
}

write_configs() { # DIR A N NODE_PORT
  local d=$1/$2 n=$3 nport=$4 sport pport
  sport=$(cat "$d/synth.port"); pport=$(cat "$d/proxy.port")
  case $2 in
    magpie)
      cat > "$d/magpie.toml" <<TOML
[collector]
plugin_dir = "$root/target/plugins"
data_dir = "$d/data"
listen = "127.0.0.1:$(free_port)"
external_labels = { agent = "magpie" }

[wal]
# The others buffer without a bound by default; keep the ring from dropping during an outage.
max_bytes = "8GiB"

[[scrape]]
job = "synth"
plugin = "prom-scrape"
interval = "${interval}s"
targets = ["http://127.0.0.1:$sport/metrics"]

[[export]]
name = "central"
plugin = "remote-write"
url = "http://127.0.0.1:$pport/api/v1/write"
TOML
      if [ "$n" = "$node_at" ]; then
        printf '\n[[scrape]]\njob = "node"\nplugin = "node"\ninterval = "%ss"\n' "$interval" >> "$d/magpie.toml"
      fi ;;
    prometheus|vmagent)
      {
        printf 'global:\n  scrape_interval: %ss\n  scrape_timeout: %ss\n' "$interval" "$interval"
        [ "$2" = prometheus ] && printf '  external_labels:\n    agent: prometheus\n'
        printf 'scrape_configs:\n  - job_name: synth\n    static_configs:\n      - targets: ["127.0.0.1:%s"]\n' "$sport"
        if [ "$n" = "$node_at" ]; then
          printf '  - job_name: node\n    static_configs:\n      - targets: ["127.0.0.1:%s"]\n' "$nport"
        fi
        if [ "$2" = prometheus ]; then
          printf 'remote_write:\n  - url: http://127.0.0.1:%s/api/v1/write\n' "$pport"
        fi
      } > "$d/scrape.yml" ;;
  esac
}

start_agent() { # DIR A  (sets pid[A])
  local d=$1/$2 pport
  pport=$(cat "$d/proxy.port")
  case $2 in
    magpie)
      "$root/target/release/magpie" run --config "$d/magpie.toml" 2>>"$d/agent.log" & ;;
    prometheus)
      prometheus --enable-feature=agent --config.file="$d/scrape.yml" --storage.agent.path="$d/data" \
        --web.listen-address="127.0.0.1:$(free_port)" --log.level=warn 2>>"$d/agent.log" & ;;
    vmagent)
      vmagent -promscrape.config="$d/scrape.yml" -remoteWrite.url="http://127.0.0.1:$pport/api/v1/write" \
        -remoteWrite.tmpDataPath="$d/data" -remoteWrite.label=agent=vmagent \
        -httpListenAddr="127.0.0.1:$(free_port)" -loggerLevel=WARN >>"$d/agent.log" 2>&1 & ;;
  esac
  pid[$2]=$!
  pids+=("${pid[$2]}")
}

# Stops agent A with SIGTERM; prints the seconds it took to exit (SIGKILL after 90 s).
stop_agent() { # A
  local p=${pid[$1]} t0 i
  t0=$(now)
  kill -TERM "$p" 2>/dev/null || { echo "n/a"; return; }
  for ((i = 0; i < 900; i++)); do alive "$p" || break; sleep 0.1; done
  if alive "$p"; then kill -KILL "$p"; wait "$p" 2>/dev/null || true; echo ">90 (killed)"; return; fi
  wait "$p" 2>/dev/null || true
  awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'
}

# SIGTERMs every agent at once, records each one's time to exit in R[N,A,shutdown] and starts
# it again as soon as it is gone (SIGKILL after 90 s).
restart_all() { # N
  local a t0 i pending=" $agents "
  t0=$(now)
  for a in $agents; do kill -TERM "${pid[$a]}" 2>/dev/null || true; done
  for ((i = 0; i < 900; i++)); do
    for a in $pending; do
      alive "${pid[$a]}" && continue
      R[$1,$a,shutdown]=$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}')
      pending=${pending/ $a / }
      start_agent "$dir" "$a"
    done
    [ -z "${pending// /}" ] && return
    sleep 0.1
  done
  for a in $pending; do
    kill -KILL "${pid[$a]}" 2>/dev/null || true
    R[$1,$a,shutdown]=">90 (killed)"
    start_agent "$dir" "$a"
  done
}

scrapes() { wc -l < "$1/$2/synth.log"; }                   # DIR A
# Waits for agent A's next scrape, then half an interval (DIR A); fails the bench when none
# comes within three intervals.
mid_scrape() {
  local c i
  c=$(scrapes "$1" "$2")
  for ((i = 0; i < interval * 30; i++)); do
    if [ "$(scrapes "$1" "$2")" != "$c" ]; then
      sleep "$(awk -v i="$interval" 'BEGIN {print i / 2}')"
      return 0
    fi
    sleep 0.1
  done
  die "$2 was not scraped for $((interval * 3)) s"
}
scrapes_between() { awk -v a="$3" -v b="$4" '$1 > a * 1000 && $1 <= b * 1000 {n++} END {print n + 0}' "$1/$2/synth.log"; }
wire_bytes() { awk '{print $1}' "$1/$2/proxy.stats"; }       # DIR A
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }       # PID
write_bytes() { awk '/^write_bytes/ {print $2}' "/proc/$1/io"; }
# Bytes each thread name of PID made dirty (write_bytes summed by name), one "name bytes" a line.
thread_writes() {
  for t in /proc/"$1"/task/*; do
    printf '%s %s\n' "$(cat "$t/comm" 2>/dev/null)" "$(awk '/^write_bytes/ {print $2}' "$t/io" 2>/dev/null)"
  done | awk 'NF == 2 {s[$1] += $2} END {for (k in s) print k, s[k]}' | sort
}
# Segments and the sizes (apparent) of the other files of a magpie data dir, one line.
wal_files() { # DIR
  find "$1" -type f -printf '%f %s\n' 2>/dev/null | awk '
    /\.seg / {n++; next} {other = other sprintf(" %s=%d", $1, $2)}
    END {printf "%d segments;%s\n", n, other}'
}
# Allocated bytes of a dir (the other agents' buffers).
dir_bytes() { du -s -B1 "$1" 2>/dev/null | awk '{print $1}'; }
# magpie's telemetry, from the listen address in its config (DIR of the agent).
magpie_metrics() { curl -s "$(sed -n 's/^listen = "\(.*\)"/http:\/\/\1\/metrics/p' "$1/magpie.toml")"; }
# What agent A's buffer holds, in bytes (DIR A): the data dir's blocks, but for magpie, whose
# segments are preallocated whole, the bytes of its ring that hold data (its telemetry).
buffer_bytes() {
  if [ "$2" = magpie ]; then
    magpie_metrics "$1/magpie" | awk '$1 == "magpie_wal_data_bytes" {printf "%d\n", $2}'
  else
    dir_bytes "$1/$2/data"
  fi
}
hosts_of() { echo $((($1 + 99) / 100)); }

# Waits until the receiver holds agent A's series; fails the bench if nothing arrives.
wait_flow() { # A N
  local i got
  for ((i = 0; i < 120; i++)); do
    got=$(query "count(last_over_time(node_load1{agent=\"$1\",job=\"synth\"}[1m]))")
    [ "${got%.*}" -ge "$(hosts_of "$2")" ] && return 0
    alive "${pid[$1]}" || break
    sleep 1
  done
  die "no data from $1 reached the receiver (log: $(tail -3 "$dir/$1/agent.log" 2>/dev/null | tr '\n' ' '))"
}

# Samples of agent A's synth job the receiver holds in the WIN seconds before T. One query per
# metric name: a range function drops the name, and series of different names may share labels.
outage_samples() { # A WIN T
  local names name total=0 v
  names=$(curl -sf --get "http://127.0.0.1:$rport/api/v1/label/__name__/values" \
    --data-urlencode "match[]={agent=\"$1\",job=\"synth\",__name__!~\"up|scrape_.*\"}" |
    sed 's/.*"data":\[\(.*\)\].*/\1/; s/[",]/ /g')
  for name in $names; do
    v=$(query "sum(count_over_time($name{agent=\"$1\",job=\"synth\"}[${2}s]))" "$3")
    total=$((total + ${v%.*}))
  done
  echo "$total"
}

# Samples per scrape of agent A's node job (0 without one).
node_samples() { query "count({agent=\"$1\",job=\"node\",__name__!~\"up|scrape_.*\"})"; }

# Waits until the receiver holds agent A's last scrape taken before time T; prints seconds
# from T, or "timeout".
wait_drained() { # A N T
  local i want
  want=$(hosts_of "$2")
  for ((i = 0; i < drain_timeout * 4; i++)); do
    got=$(query "count(last_over_time(node_load1{agent=\"$1\",job=\"synth\"}[${interval}s]))" "$3")
    if [ "${got%.*}" -ge "$want" ]; then
      awk -v a="$3" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; return
    fi
    sleep 0.25
  done
  echo "timeout"
}

# Waits (up to BENCH_DRAIN_TIMEOUT) until the receiver holds a sample of agent A scraped after
# time T: an agent that sends oldest first has then sent what it kept of its backlog.
wait_current() { # A T
  local i ts
  for ((i = 0; i < drain_timeout * 4; i++)); do
    ts=$(query "max(timestamp(node_load1{agent=\"$1\",job=\"synth\"}))")
    awk -v t="$ts" -v b="$2" 'BEGIN {exit !(t > b)}' && return 0
    sleep 0.25
  done
  log "$1: no sample newer than the outage after ${drain_timeout}s"
}

outage_for() { # N
  local spec
  for spec in $outage_spec; do
    case $spec in
      "$1":*) echo "${spec#*:}"; return ;;
      *:*) ;;
      *) echo "$spec"; return ;;
    esac
  done
  echo 60
}

label() {
  case $1 in magpie) echo magpie ;; prometheus) echo "Prometheus 2.42 agent" ;; vmagent) echo "vmagent $(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null | sed 's/[+~-].*//')" ;; esac
}

# --- one round per N --------------------------------------------------------------------------
declare -A R
run_round() { # N
  local n=$1 outage a d t0 t1 c0 c1 w0 w1 b0 b1 s0 s1 x0 x1 node_port="" nsamples
  dir=$work/n$n
  outage=$(outage_for "$n")
  mkdir -p "$dir"
  start_fixtures "$dir" "$n"
  if [ "$n" = "$node_at" ] && [ "$agents" != magpie ]; then
    command -v prometheus-node-exporter >/dev/null || die "prometheus-node-exporter not found"
    node_port=$(free_port)
    prometheus-node-exporter --web.listen-address="127.0.0.1:$node_port" --log.level=warn 2>/dev/null &
    pids+=($!)
    wait_http "http://127.0.0.1:$node_port/metrics" 20 || die "node exporter did not start"
  fi
  for a in $agents; do write_configs "$dir" "$a" "$n" "$node_port"; done

  # 1. steady state, one agent at a time.
  for a in $agents; do
    d=$dir/$a
    log "N=$n $a: steady phase (${warmup}s warm-up, ${steady}s measured)"
    start_agent "$dir" "$a"
    wait_flow "$a" "$n"
    sleep "$warmup"
    nsamples=$(node_samples "$a"); node_series[$a]=${nsamples%.*}
    t0=$(now); c0=$(cpu_ticks "${pid[$a]}"); w0=$(write_bytes "${pid[$a]}")
    b0=$(wire_bytes "$dir" "$a"); s0=$(scrapes "$dir" "$a"); x0=$(appended)
    : > "$d/rss"
    for ((i = 0; i < steady; i++)); do
      awk '/^VmRSS/ {print $2}' "/proc/${pid[$a]}/status" >> "$d/rss" 2>/dev/null || die "$a exited during the steady phase"
      sleep 1
    done
    t1=$(now); c1=$(cpu_ticks "${pid[$a]}"); w1=$(write_bytes "${pid[$a]}")
    b1=$(wire_bytes "$dir" "$a"); s1=$(scrapes "$dir" "$a"); x1=$(appended)
    R[$n,$a,hwm]=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/${pid[$a]}/status")
    R[$n,$a,rss]=$(sort -n "$d/rss" | awk '{v[NR] = $1} END {printf "%.1f", v[int((NR + 1) / 2)] / 1024}')
    [ $((x1 - x0)) -gt 0 ] || die "$a delivered nothing during the steady phase"
    R[$n,$a,delivered]=$((x1 - x0))
    R[$n,$a,cpu]=$(awk -v c="$((c1 - c0))" -v hz="$hz" -v x="$((x1 - x0))" 'BEGIN {printf "%.2f", c / hz / x * 1e6}')
    R[$n,$a,cpupct]=$(awk -v c="$((c1 - c0))" -v hz="$hz" -v t="$t0" -v u="$t1" 'BEGIN {printf "%.1f", c / hz / (u - t) * 100}')
    R[$n,$a,disk]=$(awk -v w="$((w1 - w0))" -v s="$((s1 - s0))" -v n="$((n + node_series[$a]))" 'BEGIN {printf "%.2f", s ? w / (s * n) : 0}')
    R[$n,$a,wire]=$(awk -v b="$((b1 - b0))" -v x="$((x1 - x0))" 'BEGIN {printf "%.2f", b / x}')
    if [ "$a" = magpie ]; then
      magpie_metrics "$d" > "$d/telemetry.txt" || true
    fi
    stop_agent "$a" > /dev/null
  done

  # 2. outage, all agents at once, fresh data dirs.
  log "N=$n: outage phase (${outage}s), all agents"
  for a in $agents; do rm -rf "$dir/$a/data"; start_agent "$dir" "$a"; done
  for a in $agents; do wait_flow "$a" "$n"; done
  sleep "$warmup"
  declare -A size0 sc0 wb0
  for a in $agents; do touch "$dir/$a/down"; done
  # Each agent's window starts and ends half an interval after one of its scrapes, so that it
  # holds whole scrapes. Read at any moment, an end could fall between a scrape the target
  # counted and the agent's append of it (at 100k series, tenths of a second), putting up to
  # a scrape's bytes on the wrong side of the count: 1/12 of a 60 s window at 5 s.
  for a in $agents; do
    mid_scrape "$dir" "$a"
    size0[$a]=$(buffer_bytes "$dir" "$a"); sc0[$a]=$(scrapes "$dir" "$a"); wb0[$a]=$(write_bytes "${pid[$a]}")
  done
  # Where magpie's writes in the outage go, for the log: by thread, and the files at both ends.
  if [[ " $agents " == *" magpie "* ]]; then
    thread_writes "${pid[magpie]}" > "$dir/magpie/writes0"; wal_files "$dir/magpie/data" > "$dir/magpie/files0"
  fi
  sleep "$outage"
  for a in $agents; do
    mid_scrape "$dir" "$a"
    R[$n,$a,buffer]=$(awk -v g="$(($(buffer_bytes "$dir" "$a") - size0[$a]))" \
      -v s="$(($(scrapes "$dir" "$a") - sc0[$a]))" -v n="$((n + node_series[$a]))" 'BEGIN {printf "%.2f", s ? g / (s * n) : 0}')
    R[$n,$a,outwrite]=$(awk -v g="$(($(write_bytes "${pid[$a]}") - wb0[$a]))" \
      -v s="$(($(scrapes "$dir" "$a") - sc0[$a]))" -v n="$((n + node_series[$a]))" 'BEGIN {printf "%.2f", s ? g / (s * n) : 0}')
    R[$n,$a,backlog]=$((($(scrapes "$dir" "$a") - sc0[$a]) * (n + node_series[$a])))
  done
  if [[ " $agents " == *" magpie "* ]]; then
    log "N=$n magpie: outage writes by thread (bytes): $(thread_writes "${pid[magpie]}" |
      awk 'NR == FNR {b[$1] = $2; next} {printf "%s %d; ", $1, $2 - b[$1]}' "$dir/magpie/writes0" -)"
    log "N=$n magpie: data dir before the outage: $(cat "$dir/magpie/files0"); after: $(wal_files "$dir/magpie/data")"
  fi
  for a in $agents; do
    t0=$(now)
    rm -f "$dir/$a/down"
    R[$n,$a,drain]=$(wait_drained "$a" "$n" "$t0")
    log "N=$n $a: drained in ${R[$n,$a,drain]} s"
  done

  # 3. restart during an outage.
  log "N=$n: restart during a ${restart_outage}s outage, all agents"
  sleep "$interval"
  t0=$(now)
  for a in $agents; do touch "$dir/$a/down"; done
  sleep $((restart_outage / 2))
  restart_all "$n"
  # Long enough for every restarted agent to scrape at least once before the remote returns.
  sleep $((restart_outage - restart_outage / 2 > interval + 2 ? restart_outage - restart_outage / 2 : interval + 2))
  t1=$(now)
  for a in $agents; do rm -f "$dir/$a/down"; done
  for a in $agents; do wait_current "$a" "$t1"; done
  sleep "$interval"
  local win got want
  win=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%d", b - a}')
  for a in $agents; do
    got=$(outage_samples "$a" "$win" "$t1")
    want=$(($(scrapes_between "$dir" "$a" "$(awk -v b="$t1" -v w="$win" 'BEGIN {printf "%.3f", b - w}')" "$t1") * n))
    R[$n,$a,restart]=$(awk -v g="$got" -v w="$want" 'BEGIN {if (w) printf "%.1f", 100 * g / w; else print "n/a"}')
    R[$n,$a,restart_detail]="${got%.*}/$want"
  done
  for a in $agents; do stop_agent "$a" > /dev/null; done
  R[$n,outage]=$outage
}

ratio() { # VALUE BASE
  awk -v v="$1" -v b="$2" 'BEGIN {
    if (v !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) print "–"; else printf "%.2f", v / b }'
}

print_table() { # N
  local n=$1 a row key cells
  echo
  echo "### N = $n series$([ "$n" = "$node_at" ] && echo " (+ node collector: magpie's node plugin; node_exporter for the others)")"
  echo
  local head="| per agent |" rule="|---|"
  for a in $agents; do head+=" $(label "$a") |"; rule+="---:|"; done
  for a in $agents; do [ "$a" = prometheus ] || { head+=" $a ÷ Prometheus |"; rule+="---:|"; }; done
  echo "$head"; echo "$rule"
  for row in "rss:RSS steady, median (MiB)" "hwm:RSS peak, VmHWM (MiB)" \
    "cpu:CPU s per 1M samples delivered" "cpupct:CPU % of one core, steady" \
    "disk:disk write bytes per sample scraped" "wire:wire bytes per sample delivered" \
    "buffer:buffer growth per sample in a ${R[$n,outage]} s outage" \
    "outwrite:disk write bytes per sample in that outage" \
    "drain:drain time of that backlog (s)" \
    "restart:outage samples delivered after a restart (%)" \
    "shutdown:shutdown time, remote down (s)"; do
    key=${row%%:*}; cells="| ${row#*:} |"
    for a in $agents; do
      cells+=" ${R[$n,$a,$key]:-n/a}"
      [ "$key" = restart ] && cells+=" (${R[$n,$a,restart_detail]})"
      cells+=" |"
    done
    for a in $agents; do
      [ "$a" = prometheus ] || cells+=" $(ratio "${R[$n,$a,$key]:-}" "${R[$n,prometheus,$key]:-}") |"
    done
    echo "$cells"
  done
  local ctx="| samples delivered in the steady phase |"
  for a in $agents; do ctx+=" ${R[$n,$a,delivered]:-n/a} |"; done
  for a in $agents; do [ "$a" = prometheus ] || ctx+=" |"; done
  echo "$ctx"
  ctx="| outage backlog (samples scraped) |"
  for a in $agents; do ctx+=" ${R[$n,$a,backlog]:-n/a} |"; done
  for a in $agents; do [ "$a" = prometheus ] || ctx+=" |"; done
  echo "$ctx"
}

start=$(now)
log "work dir $work; receiver on 127.0.0.1:$rport"
for n in $series_list; do run_round "$n"; done

echo "## magpie bench $([ "$quick" = 1 ] && echo "(quick)") — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "$(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, Linux $(uname -r); scrape interval ${interval}s, steady phase ${steady}s, restart outage ${restart_outage}s."
for n in $series_list; do print_table "$n"; done
echo
echo "Run time: $(awk -v a="$start" -v b="$(now)" 'BEGIN {printf "%.0f", b - a}') s."
# What dominates magpie's footprint, from its own telemetry at the end of each steady phase.
for n in $series_list; do
  f=$work/n$n/magpie/telemetry.txt
  [ -s "$f" ] || continue
  echo
  echo "magpie telemetry, N=$n, end of steady phase:"
  grep -E '^magpie_(wal_bytes|wal_samples |wal_segments|exporter_backlog|exporter_sent|exporter_retries|exporter_failed|plugin_calls|target_scrape_duration)' "$f" | sed 's/^/    /'
done
