#!/usr/bin/env bash
# The memory cost of many MQTT topics on one ingest subscription, and the message rate magpie
# sustains: a real Mosquitto, magpie subscribed with `spBv1.0/#` (sparkplug-b decoder, no
# exporter), and a paho publisher (collector/testkit/sparkplug/publish.py) sending a DBIRTH to
# each of TOPICS devices and then MESSAGES DDATA round-robin over them at QoS 1.
# Prints magpie's VmRSS before and after, per topic, and messages/s; asserts nothing.
#   bench/ingest-mqtt-topics.sh            10,000 topics, 50,000 data messages
#   bench/ingest-mqtt-topics.sh --quick    1,000 topics, 5,000 data messages (under a minute)
# MAGPIE_BIN picks the binary (default: the release build); PYTHON the interpreter with
# python3-protobuf and python3-paho-mqtt (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
topics=10000 messages=50000
[ "${1:-}" = --quick ] && topics=1000 messages=5000
python=${PYTHON:-/usr/bin/python3}
ci/build-plugins.sh >/dev/null
[ -x "$bin" ] || cargo build --quiet --release -p magpie

broker=$(free_port) port=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_inflight_messages 1000\n' "$broker" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" 2>/dev/null &
until (exec 3<>"/dev/tcp/127.0.0.1/$broker") 2>/dev/null; do sleep 0.1; done

{ collector_section "$port"
  printf '[[ingest]]\nname = "plant"\nsource = "mqtt"\nurl = "mqtt://127.0.0.1:%s"\ntopics = ["spBv1.0/#"]\nqos = 1\nplugin = "sparkplug-b"\n' "$broker"
} > "$work/magpie.toml"
"$bin" run --config "$work/magpie.toml" 2>"$work/magpie.log" &
pid=$!
wait_ready "$port"

counter() { curl -s "127.0.0.1:$port/metrics" | awk -v m="magpie_ingest_messages_total{source=\"plant\"}" '$1 == m {print $2}'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
# The subscription exists once a probe lands (a STATE message: taken, no samples).
until [ -n "$(counter)" ]; do mosquitto_pub -h 127.0.0.1 -p "$broker" -q 1 -t spBv1.0/STATE/probe -m x; sleep 0.2; done
base=$(counter)
before=$(rss_kib)

start=$(date +%s.%N)
"$python" collector/testkit/sparkplug/publish.py 127.0.0.1 "$broker" --bench "$topics" "$messages" > "$work/pub.txt"
want=$(awk -v b="$base" -v n=$((topics + messages)) 'BEGIN {print b + n}')
until awk -v c="$(counter)" -v w="$want" 'BEGIN {exit !(c >= w)}'; do sleep 0.1; done
end=$(date +%s.%N)
after=$(rss_kib)

echo "| topics | messages | VmRSS before (KiB) | VmRSS after (KiB) | per topic (bytes) | messages/s sustained | publisher alone |"
echo "|---|---|---|---|---|---|---|"
awk -v t="$topics" -v m="$messages" -v b="$before" -v a="$after" -v s="$start" -v e="$end" -v p="$(cat "$work/pub.txt")" \
  'BEGIN {printf "| %d | %d | %d | %d | %.0f | %.0f | %s |\n", t, t + m, b, a, (a - b) * 1024 / t, (t + m) / (e - s), p}'
