#!/usr/bin/env bash
# Soak test of the release binary against real receivers that come and go.
#
#   bench/soak.sh [--duration 1h] [--series 10000] [--interval 10s] [--wal-max-bytes SIZE]
#
# magpie scrapes one synthetic target (bench/synth, `synth serve`) of N series every INTERVAL
# and exports every sample twice: remote write to a real Prometheus
# (--web.enable-remote-write-receiver), and MQTT (JSON encoding, QoS 1) through a real
# Mosquitto (persistence on) to a persistent-session subscriber (mosquitto_sub piped into
# bench/soak-mqtt-count.py). During the run:
#   - the Prometheus receiver flaps: every P_FLAP it is stopped (SIGTERM) and started again
#     P_FLAP/4 later on the same data dir;
#   - Mosquitto is restarted (SIGTERM, started again a second later) every P_EVENT;
#   - magpie gets a SIGHUP (configuration reload) every P_EVENT, half a period after each
#     broker restart.
# P_FLAP = 120 s x scale and P_EVENT = 300 s x scale, scale = duration / 1 h clamped to
# [1/4, 1]: an hour flaps every 120 s and restarts / reloads every 300 s; 15 min or less every
# 30 s and 75 s, so a short run still sees every event several times.
#
# Prints magpie's VmRSS and VmHWM (/proc/PID/status) once a minute as a table, then their
# min / max / last. At the end the scrape job is removed (one more SIGHUP, exporters keep
# running), both receivers are up, and the script waits until both exporters' backlogs are
# empty; then it prints the accounting:
#   served    = scrapes in the target's own log x series per scrape
#   scraped   = magpie_samples_scraped_total; appended = magpie_wal_samples_appended_total
#               (= scraped + the synthetic samples of each scrape (`up`, `scrape_*`; as many
#               as SYNTHETIC in collector/scrape/src/target_loop.rs) + staleness markers)
#   delivered = per receiver: Prometheus sum of count_over_time per series over the run;
#               MQTT distinct (series, timestamp) pairs the subscriber received
#   dropped   = magpie_exporter_dropped_samples_total (the ring dropped them before delivery)
#   missing   = appended - dropped - delivered, per receiver.
# Exit status 1 when any receiver's `missing` is not 0 (a sample neither delivered nor
# counted as dropped), when served and scraped disagree beyond what counted scrape failures
# explain, when appended is not scraped + synthetic + markers, when magpie died, or when RSS
# grows steadily. The RSS rule: VmRSS is sampled every 5 s; the first quarter of the run (at
# least 2 minutes) is warm-up; the rest is cut in three equal parts; RSS "grows steadily" when
# the median of each part is above the median of the part before AND the last part's median
# exceeds the first's by more than 10 % and 4 MiB. Status 3: something did not start or no
# data flowed.
# SOAK_KEEP=1 keeps the work dir; SOAK_SYNTH=path runs a prebuilt synth binary.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds_of() { # 90 | 90s | 15m | 1h -> seconds
  case $1 in
    *h) echo $((${1%h} * 3600)) ;; *m) echo $((${1%m} * 60)) ;; *s) echo "${1%s}" ;;
    *[!0-9]*|'') echo "soak: bad duration $1" >&2; exit 2 ;; *) echo "$1" ;;
  esac
}
duration=3600 series=10000 interval=10 wal_max=""
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$(seconds_of "$2"); shift 2 ;;
    --series) series=$2; shift 2 ;;
    --interval) interval=$(seconds_of "$2"); shift 2 ;;
    --wal-max-bytes) wal_max=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$duration" -ge 120 ] || { echo "soak: --duration must be at least 2m" >&2; exit 2; }

# Event periods, scaled with the duration (see the header).
read -r flap_period event_period < <(awk -v d="$duration" 'BEGIN {
  s = d / 3600; if (s < 0.25) s = 0.25; if (s > 1) s = 1; printf "%d %d\n", 120 * s, 300 * s }')
flap_down=$((flap_period / 4))
rss_step=5

die() { echo "soak: $*" >&2; exit 3; }
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
for tool in prometheus mosquitto mosquitto_sub curl python3; do
  command -v "$tool" >/dev/null || die "$tool not found (ci/setup.sh installs it)"
done
log "building the release magpie, synth and the plugins"
{ ci/build-plugins.sh >/dev/null && cargo build --quiet --release -p magpie; } || die "the build failed"
synth=${SOAK_SYNTH:-}
if [ -z "$synth" ]; then
  cargo build --quiet --release -p magpie-bench || die "the build of synth failed"
  synth=$root/target/release/synth
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/magpie-soak.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "soak: kept $work" >&2; else rm -rf "$work"; fi
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
wait_http() { # URL SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  return 1
}
alive() { kill -0 "$1" 2>/dev/null; }
# Stops PID with SIGTERM and waits for it (SIGKILL after 60 s); forgets it, so the clean-up
# never signals a number the system has given to another process since.
stop_pid() {
  local i p keep=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
  kill -TERM "$1" 2>/dev/null || return 0
  for ((i = 0; i < 600; i++)); do alive "$1" || break; sleep 0.1; done
  alive "$1" && kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null || true
}

# --- the target -----------------------------------------------------------------------------
"$synth" serve --series "$series" --port-file "$work/synth.port" --log "$work/synth.log" 2>>"$work/synth.err" &
pids+=($!)
for ((i = 0; i < 100; i++)); do [ -s "$work/synth.port" ] && break; sleep 0.1; done
[ -s "$work/synth.port" ] || die "synth did not start"
target="http://127.0.0.1:$(cat "$work/synth.port")/metrics"
per_scrape=$(curl -sf "$target" | grep -vc '^#') || die "the target does not answer"
: > "$work/synth.log" # forget the scrape just made

# --- the Prometheus receiver -----------------------------------------------------------------
rport=$(free_port)
mkdir -p "$work/receiver"
cat > "$work/receiver/prometheus.yml" <<YAML
global:
  scrape_interval: 1h
YAML
receiver_pid=""
start_receiver() {
  prometheus --config.file="$work/receiver/prometheus.yml" --storage.tsdb.path="$work/receiver/data" \
    --web.listen-address="127.0.0.1:$rport" --web.enable-remote-write-receiver \
    --storage.tsdb.retention.time=1d --log.level=warn 2>>"$work/receiver/log" &
  receiver_pid=$!
  pids+=("$receiver_pid")
}
start_receiver
wait_http "http://127.0.0.1:$rport/-/ready" 60 || die "the receiver did not start: $(tail -3 "$work/receiver/log")"

# --- Mosquitto and the counting subscriber ---------------------------------------------------
mport=$(free_port)
mkdir -p "$work/broker"
cat > "$work/broker/mosquitto.conf" <<CONF
listener $mport 127.0.0.1
allow_anonymous true
# Queued messages of the subscriber's session survive a restart (saved at SIGTERM); without a
# limit on the queue, none is thrown away while the subscriber reconnects.
persistence true
persistence_location $work/broker/
max_queued_messages 0
# As root Mosquitto drops to user mosquitto, which could not write the persistence file here.
user $(id -un)
CONF
broker_pid=""
start_broker() {
  mosquitto -c "$work/broker/mosquitto.conf" >>"$work/broker/log" 2>&1 &
  broker_pid=$!
  pids+=("$broker_pid")
  for ((i = 0; i < 100; i++)); do (exec 3<>"/dev/tcp/127.0.0.1/$mport") 2>/dev/null && return 0; sleep 0.1; done
  die "mosquitto did not start: $(tail -3 "$work/broker/log")"
}
start_broker
mkfifo "$work/mqtt.fifo"
python3 "$root/bench/soak-mqtt-count.py" "$work/mqtt.stats" < "$work/mqtt.fifo" 2>>"$work/mqtt.err" &
pids+=($!)
# -c: a persistent session (QoS 1), so messages published while it reconnects wait for it.
mosquitto_sub -h 127.0.0.1 -p "$mport" -t 'soak/#' -q 1 -c -i magpie-soak-counter > "$work/mqtt.fifo" 2>>"$work/mqtt.err" &
pids+=($!)
for ((i = 0; i < 100; i++)); do grep -q 'as magpie-soak-counter' "$work/broker/log" && break; sleep 0.1; done
grep -q 'as magpie-soak-counter' "$work/broker/log" || die "the MQTT subscriber did not connect"

# --- magpie ---------------------------------------------------------------------------------
listen="127.0.0.1:$(free_port)"
write_config() { # with_scrape(0|1)
  {
    cat <<TOML
[collector]
plugin_dir = "$root/target/plugins"
data_dir = "$work/data"
listen = "$listen"
TOML
    [ -n "$wal_max" ] && printf '[wal]\nmax_bytes = "%s"\n' "$wal_max"
    [ "$1" = 1 ] && cat <<TOML
[[scrape]]
job = "soak"
plugin = "prom-scrape"
interval = "${interval}s"
targets = ["$target"]
TOML
    cat <<TOML
[[export]]
name = "central"
plugin = "remote-write"
url = "http://127.0.0.1:$rport/api/v1/write"
[[export]]
name = "broker"
plugin = "mqtt"
url = "mqtt://127.0.0.1:$mport"
topic = "soak/{job}"
[export.config]
encoding = "json"
TOML
  } > "$work/magpie.toml.tmp"
  mv "$work/magpie.toml.tmp" "$work/magpie.toml"
}
write_config 1
"$root/target/release/magpie" run --config "$work/magpie.toml" 2>>"$work/magpie.log" &
magpie=$!
pids+=("$magpie")
wait_http "http://$listen/-/ready" 30 || die "magpie did not start: $(tail -3 "$work/magpie.log")"
metrics() { curl -sf --max-time 10 "http://$listen/metrics"; }
# metric NAME [LABELS] -> the value of one sample of magpie's /metrics, 0 when absent.
metric() {
  metrics | awk -v m="$1${2:+\{$2\}}" '$1 == m {v = $2} END {printf "%.0f\n", v}'
}

# --- the run --------------------------------------------------------------------------------
log "work dir $work; $series series every ${interval}s for ${duration}s; receiver flaps every ${flap_period}s (down ${flap_down}s), broker restarts and SIGHUPs every ${event_period}s"
echo "## magpie soak — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "$(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM; $series series ($per_scrape per scrape) every ${interval}s for ${duration}s; Prometheus receiver stopped every ${flap_period}s for ${flap_down}s; Mosquitto restarted and SIGHUP every ${event_period}s."
echo
echo "| minute | VmRSS MiB | VmHWM MiB | backlog central | backlog broker | receiver stops | broker restarts | SIGHUPs |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
start=$EPOCHSECONDS
next_flap=$flap_period next_broker=$event_period next_hup=$((event_period / 2)) next_rss=0 next_row=60
receiver_up=1 receiver_back=0 flaps=0 restarts=0 hups=0
: > "$work/rss"
rss_of() { awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {print r, h}' "/proc/$magpie/status"; }
# One line of the table per minute: RSS now and the exporters' backlogs.
minute_row() {
  local m r h
  m=$(metrics || true)
  read -r r h < <(rss_of)
  printf '| %d | %s | %s | %s | %s | %d | %d | %d |\n' $((next_row / 60)) \
    "$(awk -v k="$r" 'BEGIN {printf "%.1f", k / 1024}')" "$(awk -v k="$h" 'BEGIN {printf "%.1f", k / 1024}')" \
    "$(awk '$1 == "magpie_exporter_backlog_samples{exporter=\"central\"}" {print $2}' <<<"$m")" \
    "$(awk '$1 == "magpie_exporter_backlog_samples{exporter=\"broker\"}" {print $2}' <<<"$m")" \
    "$flaps" "$restarts" "$hups"
  next_row=$((next_row + 60))
}
failed=""
while :; do
  t=$((EPOCHSECONDS - start))
  [ "$t" -ge "$duration" ] && break
  alive "$magpie" || { failed="magpie exited during the run: $(tail -3 "$work/magpie.log")"; break; }
  if [ "$t" -ge "$next_rss" ]; then
    echo "$t $(rss_of)" >> "$work/rss"
    next_rss=$((next_rss + rss_step))
  fi
  if [ "$receiver_up" = 1 ] && [ "$t" -ge "$next_flap" ]; then
    stop_pid "$receiver_pid"; receiver_up=0; receiver_back=$((t + flap_down)); flaps=$((flaps + 1))
    next_flap=$((next_flap + flap_period))
  elif [ "$receiver_up" = 0 ] && [ "$t" -ge "$receiver_back" ]; then
    start_receiver; receiver_up=1
  fi
  if [ "$t" -ge "$next_broker" ]; then
    stop_pid "$broker_pid"; sleep 1; start_broker; restarts=$((restarts + 1))
    next_broker=$((next_broker + event_period))
  fi
  if [ "$t" -ge "$next_hup" ]; then
    kill -HUP "$magpie"; hups=$((hups + 1))
    next_hup=$((next_hup + event_period))
  fi
  [ "$t" -ge "$next_row" ] && minute_row
  sleep 1
done
[ -z "$failed" ] || { echo "soak: FAILED: $failed" >&2; exit 1; }
[ $((EPOCHSECONDS - start)) -ge "$next_row" ] && minute_row
echo "$((EPOCHSECONDS - start)) $(rss_of)" >> "$work/rss"

# --- drain and account ----------------------------------------------------------------------
log "stopping the scrape job (SIGHUP without it) and draining both exporters"
if [ "$receiver_up" = 0 ]; then start_receiver; fi
wait_http "http://127.0.0.1:$rport/-/ready" 120 || die "the receiver did not come back: $(tail -3 "$work/receiver/log")"
write_config 0
kill -HUP "$magpie"; hups=$((hups + 1))
# The scrape job is gone once magpie_scrapes stops moving.
prev=-1
for ((i = 0; i < 120; i++)); do
  cur=$(metric magpie_scrapes_total 'job="soak"')
  [ "$cur" = "$prev" ] && break
  prev=$cur; sleep $((interval + 1))
done
drain_start=$EPOCHSECONDS
for ((i = 0; i < 1200; i++)); do
  alive "$magpie" || die "magpie exited while draining: $(tail -3 "$work/magpie.log")"
  b1=$(metric magpie_exporter_backlog_samples 'exporter="central"')
  b2=$(metric magpie_exporter_backlog_samples 'exporter="broker"')
  [ "$b1" = 0 ] && [ "$b2" = 0 ] && break
  sleep 0.5
done
drain=$((EPOCHSECONDS - drain_start))
# The WAL's counters reach /metrics through the sync loop; the subscriber may still be reading.
sleep 3
prev=""
for ((i = 0; i < 60; i++)); do
  cur=$(cat "$work/mqtt.stats")
  [ "$cur" = "$prev" ] && break
  prev=$cur; sleep 2
done
end=$EPOCHSECONDS
m=$(metrics) || die "magpie's /metrics did not answer"
get() { awk -v k="$1" '$1 == k {v = $2} END {printf "%.0f\n", v}' <<<"$m"; }
scrapes=$(get 'magpie_scrapes_total{job="soak"}')
scrape_failures=$(get 'magpie_scrape_failures_total{job="soak"}')
scraped=$(get 'magpie_samples_scraped_total{job="soak"}')
appended=$(get magpie_wal_samples_appended_total)
served_scrapes=$(wc -l < "$work/synth.log")
served=$((served_scrapes * per_scrape))
mq() { awk -v k="$1" '$1 == k {print $2}' "$work/mqtt.stats"; }

# Samples the receiver holds per series over the run, one query per metric name (a range
# function drops the name, and series of different names may share their other labels).
window=$((end - start + 300))
query() {
  curl -sf --max-time 60 --get "http://127.0.0.1:$rport/api/v1/query" --data-urlencode "query=$1" \
    --data-urlencode "time=$end" | sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p'
}
names=$(curl -sf --get "http://127.0.0.1:$rport/api/v1/label/__name__/values" \
  --data-urlencode 'match[]={job="soak"}' | sed 's/.*"data":\[\(.*\)\].*/\1/; s/[",]/ /g')
[ -n "$names" ] || die "the receiver holds no series of the soak job"
prom_delivered=0 prom_series=0
for name in $names; do
  v=$(query "sum(count_over_time($name{job=\"soak\"}[${window}s]))")
  c=$(query "count(count_over_time($name{job=\"soak\"}[${window}s]))")
  prom_delivered=$((prom_delivered + ${v:-0}))
  prom_series=$((prom_series + ${c:-0}))
done
# PromQL does not count staleness markers; the MQTT copy of the same WAL counts them.
stale=$(mq stale)

echo
echo "RSS over the run ($(wc -l < "$work/rss") samples, every ${rss_step}s):"
echo
# Prints the table and the rule's figures; the verdict (ok | grows) goes to the verdict file.
python3 - "$work/rss" 2>"$work/rss.verdict" <<'PY'
import statistics, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
rss = [r for _, r, _ in rows]
hwm = [h for _, _, h in rows]
mib = lambda kb: f"{kb / 1024:.1f}"
print("| MiB | min | max | last |")
print("|---|---:|---:|---:|")
print(f"| VmRSS | {mib(min(rss))} | {mib(max(rss))} | {mib(rss[-1])} |")
print(f"| VmHWM | {mib(min(hwm))} | {mib(max(hwm))} | {mib(hwm[-1])} |")
# Warm-up: the first quarter of the run, at least 2 minutes (24 samples 5 s apart).
rest = rss[max(len(rss) // 4, 24):]
k = len(rest) // 3
if k < 2:
    print("\nRSS rule: too few samples after the warm-up to judge")
    print("ok", file=sys.stderr)
    sys.exit(0)
meds = [statistics.median(rest[i * k:(i + 1) * k]) for i in range(3)]
grows = meds[0] < meds[1] < meds[2] and meds[2] - meds[0] > max(0.10 * meds[0], 4096)
print(f"\nRSS rule: VmRSS medians of the three parts after the warm-up: {' / '.join(mib(m) for m in meds)} MiB"
      f" -> {'GROWS STEADILY' if grows else 'no steady growth'}")
print("grows" if grows else "ok", file=sys.stderr)
PY
rss_verdict=$(cat "$work/rss.verdict")

status=0
# check OK(1|0): sets $v to the table's verdict and fails the run on 0. Not called in $( ),
# whose subshell would lose the status.
check() {
  if [ "$1" = 1 ]; then v=ok; else status=1; v="**FAIL**"; fi
}
# The series each scrape adds (`up`, `scrape_*`), as the scrape crate of this checkout lists them.
per_synthetic=$(sed -n 's/^const SYNTHETIC: \[&str; \([0-9]*\)\].*/\1/p' "$root/collector/scrape/src/target_loop.rs")
[ -n "$per_synthetic" ] || die "cannot read SYNTHETIC from collector/scrape/src/target_loop.rs"
synthetic=$((per_synthetic * scrapes))
expect_appended=$((scraped + synthetic + stale))
echo
echo "Accounting over $((end - start)) s ($scrapes scrapes, $scrape_failures failed; final drain ${drain} s):"
echo
echo "| samples | count | check |"
echo "|---|---:|---|"
check "$([ "$scraped" -le "$served" ] && [ $((served - scraped)) -le $((scrape_failures * per_scrape)) ] && echo 1 || echo 0)"
echo "| served by the target ($served_scrapes scrapes x $per_scrape) | $served | |"
echo "| scraped (magpie_samples_scraped_total) | $scraped | $v served − scraped = $((served - scraped)), failed scrapes explain up to $((scrape_failures * per_scrape)) |"
echo "| + synthetic up / scrape_* ($per_synthetic x $scrapes) | $synthetic | |"
echo "| + staleness markers (counted by the MQTT subscriber) | $stale | |"
check "$([ "$appended" = "$expect_appended" ] && echo 1 || echo 0)"
echo "| appended to the WAL (magpie_wal_samples_appended_total) | $appended | $v expected $expect_appended |"
for exp in central broker; do
  dropped=$(get "magpie_exporter_dropped_samples_total{exporter=\"$exp\"}")
  if [ "$exp" = central ]; then
    delivered=$((prom_delivered + stale)); what="Prometheus, count_over_time over $prom_series series + $stale staleness markers"
  else
    delivered=$(mq samples); what="MQTT subscriber, distinct (series, timestamp) over $(mq series) series; $(mq duplicates) duplicates received and not counted"
  fi
  missing=$((appended - dropped - delivered))
  echo "| $exp: delivered ($what) | $delivered | |"
  echo "| $exp: dropped by the ring (magpie_exporter_dropped_samples_total) | $dropped | |"
  # These counters restart at each reload; shown for diagnosis, part of `missing` if not 0.
  echo "| $exp: refused by the receiver since the last reload (rejected + too old + poisoned) | $(($(get "magpie_exporter_rejected_samples_total{exporter=\"$exp\"}") + $(get "magpie_exporter_too_old_samples_total{exporter=\"$exp\"}") + $(get "magpie_exporter_poisoned_samples_total{exporter=\"$exp\"}"))) | |"
  check "$([ "$missing" = 0 ] && echo 1 || echo 0)"
  echo "| $exp: missing = appended − dropped − delivered | $missing | $v |"
done
bad=$(mq bad_messages)
[ "${bad:-0}" = 0 ] || { status=1; echo; echo "**FAIL**: $bad MQTT messages could not be read (see $work/mqtt.err)"; }
if [ "$rss_verdict" != ok ]; then status=1; echo; echo "**FAIL**: RSS grows steadily"; fi
echo
echo "Events: $flaps receiver stops, $restarts broker restarts, $hups SIGHUPs (the last one removed the scrape job). Run time $((EPOCHSECONDS - start)) s."
echo "magpie logged $(grep -c ' ERROR ' "$work/magpie.log" || true) error and $(grep -c ' WARN ' "$work/magpie.log" || true) warning lines."
[ "$status" = 0 ] && echo "soak: passed" || echo "soak: FAILED" >&2
exit "$status"
