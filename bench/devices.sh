#!/usr/bin/env bash
# The wall time of one scrape call of the device plugins against real devices, under Cranelift
# (this machine's code) and under Pulley (the interpreter 32-bit ARM runs), with the size of
# each plugin:
#   modbus  100 holding registers (uint16, one request) from a pymodbus TCP server
#   snmp    the if_mib walk (snmp_exporter's generated module) of a 48-port interface table
#           over v2c from Debian's snmpd
# snmpd reports the interfaces of the host it runs on, so the whole bench runs in a private
# network namespace (`unshare -n`, root) holding lo and 48 veth interfaces (port0..port47, 24 pairs);
# both servers and the timing example listen and talk on its loopback. Prints a table; asserts
# nothing. Usage: bench/devices.sh   (run ci/build-plugins.sh first)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${DEVICES_NETNS:-}" != 1 ]; then
  cargo build -q -p magpie-host --example device_time
  DEVICES_NETNS=1 exec unshare -n "$0" "$@"
fi
ip link set lo up
# veth, not dummy: this kernel may lack the dummy driver. 24 pairs are 48 Ethernet ports.
for i in $(seq 0 2 46); do
  ip link add "port$i" type veth peer name "port$((i + 1))"
  ip link set "port$i" up
  ip link set "port$((i + 1))" up
done

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait; rm -rf "$work"' EXIT
free_port() { python3 -c "import socket; s=socket.socket(socket.AF_INET, socket.$1); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
mb_port=$(free_port SOCK_STREAM)
snmp_port=$(free_port SOCK_DGRAM)

cat > "$work/modbus.py" <<'PY'
import sys
from pymodbus.server import StartTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
regs = [SimData(address=0, values=list(range(1000, 1100)), datatype=DataType.REGISTERS)]
one_bit = [SimData(address=0, values=[True], datatype=DataType.BITS)]
one_reg = [SimData(address=0, values=[1], datatype=DataType.REGISTERS)]
dev = SimDevice(id=0, simdata=(one_bit, one_bit, regs, one_reg))
StartTcpServer(dev, address=("127.0.0.1", int(sys.argv[1])))
PY
python3 "$work/modbus.py" "$mb_port" >/dev/null 2>&1 &

printf 'rocommunity bench 127.0.0.1\n' > "$work/snmpd.conf"
mkdir "$work/snmpd-state"
SNMP_PERSISTENT_DIR="$work/snmpd-state" MIBS="" snmpd -f -Lo -C -c "$work/snmpd.conf" \
  -p "$work/snmpd.pid" "udp:127.0.0.1:$snmp_port" >/dev/null 2>&1 &
for _ in $(seq 200); do
  MIBS="" snmpget -v2c -c bench -t 1 -r 0 "127.0.0.1:$snmp_port" 1.3.6.1.2.1.2.1.0 >/dev/null 2>&1 && break
  sleep 0.1
done
for _ in $(seq 200); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $mb_port))" 2>/dev/null && break
  sleep 0.1
done
ifaces=$(MIBS="" snmpget -v2c -c bench -Oqv "127.0.0.1:$snmp_port" 1.3.6.1.2.1.2.1.0)
echo "snmpd ifNumber: $ifaces (lo + 48 veth ports)"

cp plugins/snmp/testdata/snmp.yml "$work/snmp.yml"
echo bench > "$work/community"
# Only .wasm, so that each engine compiles it at load (no stale .cwasm of another engine).
mkdir "$work/plugins"
cp target/plugins/modbus.wasm target/plugins/snmp.wasm "$work/plugins/"
args=("$work/plugins" "tcp://127.0.0.1:$mb_port" "udp://127.0.0.1:$snmp_port" "$work/snmp.yml" "$work/community")
declare -A median samples
for engine in cranelift pulley; do
  if [ $engine = pulley ]; then export MAGPIE_ENGINE_TARGET=pulley64; fi
  while read -r name _ _ med _ _ _ _ _ _ _ n _; do
    median[$name.$engine]=$med
    samples[$name]=$n
  done < <(target/debug/examples/device_time "${args[@]}" | tee /dev/stderr)
done
printf '\n| plugin | scrape | samples | Cranelift median | Pulley median | .wasm size |\n|---|---|---|---|---|---|\n'
printf '| modbus | 100 holding registers, 1 request | %s | %s ms | %s ms | %s bytes |\n' \
  "${samples[modbus]}" "${median[modbus.cranelift]}" "${median[modbus.pulley]}" "$(stat -c %s target/plugins/modbus.wasm)"
printf '| snmp | if_mib walk, %s interfaces | %s | %s ms | %s ms | %s bytes |\n' \
  "$ifaces" "${samples[snmp]}" "${median[snmp.cranelift]}" "${median[snmp.pulley]}" "$(stat -c %s target/plugins/snmp.wasm)"
echo "load: $(uptime)"
