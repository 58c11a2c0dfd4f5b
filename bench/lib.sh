# Set-up shared by the bench scripts, sourced by them after `cd` to the repository root:
# a scratch directory removed on exit (with every background job killed), loopback ports, the
# `[collector]` section of a magpie config, a Prometheus remote write receiver, and CPU ticks
# from /proc. Kept in one place so that every bench measures the same binary the same way.
# MAGPIE_BIN runs another binary than the release build (or a wrapper such as perf record).

bin=${MAGPIE_BIN:-target/release/magpie}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until the server at 127.0.0.1:PORT answers /-/ready (magpie and Prometheus alike).
wait_ready() { until curl -s "127.0.0.1:$1/-/ready" >/dev/null 2>&1; do sleep "${2:-0.1}"; done; }

# The `[collector]` section for a magpie listening on 127.0.0.1:PORT, data and plugins as built
# (MAGPIE_PLUGIN_DIR: plugins from another directory, e.g. another build's, to compare them).
collector_section() {
  printf '[collector]\nplugin_dir = "%s"\ndata_dir = "%s"\nlisten = "127.0.0.1:%s"\n' \
    "${MAGPIE_PLUGIN_DIR:-$PWD/target/plugins}" "$work/data" "$1"
}

# Starts Prometheus in the background as a remote write receiver on 127.0.0.1:PORT and waits
# until it is ready. It scrapes nothing (interval 1h), so it costs little CPU of its own.
start_prometheus() {
  printf 'global:\n  scrape_interval: 1h\n' > "$work/prom.yml"
  prometheus --config.file="$work/prom.yml" --storage.tsdb.path="$work/prom" --web.listen-address="127.0.0.1:$1" \
    --web.enable-remote-write-receiver --log.level=warn 2>/dev/null &
  wait_ready "$1"
}

# User + system CPU ticks used so far by process PID.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
