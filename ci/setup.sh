#!/usr/bin/env bash
# Installs what building and testing magpie needs on a Debian machine with rustup: the Rust
# targets, and the real servers the tests run against. Skips what is already there.
# `ci/setup.sh targets` does the Rust targets only, `ci/setup.sh packages` the rest (ci/test.sh
# installs the packages while it builds); no argument does both.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
case $what in
  all | targets | packages) ;;
  *) echo "usage: ci/setup.sh [targets|packages]" >&2; exit 2 ;;
esac

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# rust-toolchain.toml names the toolchain and its targets; rustup installs them on first use,
# but only when asked for, so ask now.
if [ "$what" != packages ]; then
  rustup show active-toolchain >/dev/null
  for t in wasm32-unknown-unknown aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
  done
fi
[ "$what" != targets ] || exit 0

need=()
# Real servers the tests run against (openssl makes their test certificates, curl pushes to
# the ingest listener, dnsmasq-base is the DNS server of the dns_sd test, without the system
# service of `dnsmasq`, chromium loads the status page, faketime moves the wall clock of the
# clock-policy test, nginx-light serves fleet bundles, socat makes the pty pair of the Modbus
# RTU test), the cross toolchains and emulator for ARM, python3 for the bench and soak scripts
# and the Modbus server (python3-venv for the OpenTelemetry SDK below); protobuf-compiler,
# python3-protobuf and python3-paho-mqtt build and publish the Sparkplug B payloads of the
# ingest_sparkplug test; snmpd (net-snmp's agent, run by the snmp test on a port of its own)
# and snmp (snmpwalk, whose output the test compares with).
for pkg in openssl curl python3 python3-pip python3-venv socat faketime chromium dnsmasq-base prometheus prometheus-node-exporter victoria-metrics mosquitto mosquitto-clients nginx-light protobuf-compiler python3-protobuf python3-paho-mqtt qemu-user gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross snmpd snmp; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The OpenTelemetry Python SDK and its OTLP/HTTP exporter, which push to magpie in
# collector/magpie/tests/ingest_otlp.rs: from PyPI, pinned, into a virtual environment
# (Debian's Python refuses pip installs into the system's site-packages).
otel_venv="${HOME}/.cache/magpie/otel-venv"
otel_version=1.45.2
if ! "$otel_venv/bin/python" -c "import opentelemetry.exporter.otlp.proto.http, opentelemetry.version as v, sys; sys.exit(v.__version__ != '$otel_version')" 2>/dev/null; then
  echo "installing the OpenTelemetry Python SDK $otel_version into $otel_venv"
  python3 -m venv "$otel_venv"
  "$otel_venv/bin/pip" install -q "opentelemetry-sdk==$otel_version" "opentelemetry-exporter-otlp-proto-http==$otel_version"
fi

# pymodbus, the Modbus TCP and RTU server of the modbus tests (pyserial for its RTU side).
if ! python3 -c 'import pymodbus, serial' 2>/dev/null; then
  echo "installing: pymodbus"
  sudo_ python3 -m pip install --quiet 'pymodbus[serial]==3.16.1' 2>/dev/null \
    || sudo_ python3 -m pip install --quiet --break-system-packages 'pymodbus[serial]==3.16.1'
fi
