#!/usr/bin/env bash
# The device build on each ARM target: magpie without a compiler (no Cranelift), loading
# plugins precompiled on this x86_64 host with `magpie plugin compile --target`, run under
# qemu-user. Proves a device loads what a build host makes and signs, and refuses what it
# cannot run or what is not signed by a key it trusts.
# Needs target/plugins (ci/build-plugins.sh). Called by ci/cross-test.sh; runs on its own too.
set -euo pipefail
cd "$(dirname "$0")/.."

tdir=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { printf '\n== %s (%(%H:%M:%S)T)\n' "$1" -1; }

fail() { echo "device test: $*" >&2; exit 1; }
# expect_fail WHAT PATTERN CMD...: CMD must fail and say PATTERN.
expect_fail() {
  local what=$1 pattern=$2 out
  shift 2
  if out=$("$@" 2>&1); then fail "$what: succeeded: $out"; fi
  grep -qF -- "$pattern" <<<"$out" || fail "$what: no \`$pattern\` in: $out"
  echo "ok: $what"
}

step "build host: magpie with every Cranelift backend (plugin compile for any target)"
cargo build --quiet -p magpie --features cross-compile
cp "$tdir/debug/magpie" "$work/magpie-host"
# The fleet key: the build host signs with it, devices trust its public half.
"$work/magpie-host" key generate --out "$work/fleet"
# The devices' config: the node plugin (files) and prom-scrape (no targets needed to load).
write_config() {
  cat >"$1/magpie.toml" <<TOML
[collector]
data_dir = "$1/data"
plugin_dir = "$1/plugins"

[trust]
keys = ["$work/fleet.pub"]

[[scrape]]
job = "host"
plugin = "node"
files = ["/proc", "/sys"]

[[scrape]]
job = "local"
plugin = "prom-scrape"
targets = ["http://127.0.0.1:9/metrics"]
TOML
  # With `snmp`: the snmp plugin too, whose init reads its module file (the if_mib test data).
  [ "${2:-}" = snmp ] || return 0
  cat >>"$1/magpie.toml" <<TOML

[[scrape]]
job = "switch"
plugin = "snmp"
targets = ["udp://127.0.0.1:9"]
files = ["$PWD/plugins/snmp/testdata"]
[scrape.config]
modules_file = "$PWD/plugins/snmp/testdata/snmp.yml"
modules = ["if_mib"]
TOML
}

for target in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
  case "$target" in
    aarch64-*) runner=(qemu-aarch64 -L /usr/aarch64-linux-gnu) ;;
    armv7-*) runner=(qemu-arm -L /usr/arm-linux-gnueabihf) ;;
  esac
  step "device build $target (no compiler)"
  cargo build --quiet --target "$target" -p magpie --no-default-features --features mqtt
  dev="$work/magpie-$target"
  cp "$tdir/$target/debug/magpie" "$dev"
  # Output is captured before it is searched: grep -q would close the pipe early.
  out=$("${runner[@]}" "$dev" --version)
  grep -qF "no compiler" <<<"$out" || fail "$target: not the device build: $out"

  d="$work/$target"
  mkdir -p "$d/plugins"
  for p in node prom-scrape snmp; do
    "$work/magpie-host" plugin compile --target "$target" "target/plugins/$p.wasm" "$d/plugins/$p.cwasm"
    "$work/magpie-host" plugin sign --key "$work/fleet" "$d/plugins/$p.cwasm"
  done
  "${runner[@]}" "$dev" plugin verify --key "$work/fleet.pub" "$d/plugins/node.cwasm"
  out=$("${runner[@]}" "$dev" plugin inspect "$d/plugins/node.cwasm")
  grep -qF "(precompiled)" <<<"$out" || fail "$target: inspect does not show a precompiled module: $out"
  write_config "$d" snmp
  "${runner[@]}" "$dev" check "$d/magpie.toml"

  # The same modules without their signatures are refused, each by name.
  mkdir -p "$d/unsigned/plugins"
  cp "$d/plugins/node.cwasm" "$d/plugins/prom-scrape.cwasm" "$d/unsigned/plugins/"
  write_config "$d/unsigned"
  expect_fail "$target refuses an unsigned .cwasm" "$d/unsigned/plugins/node.cwasm" \
    "${runner[@]}" "$dev" check "$d/unsigned/magpie.toml"
  expect_fail "$target says why" "missing signature" \
    "${runner[@]}" "$dev" check "$d/unsigned/magpie.toml"

  # What the device build refuses, each with the command that fixes it.
  cp target/plugins/hello.wasm "$d/plugins/hello.wasm"
  expect_fail "$target refuses .wasm" "magpie plugin compile --target $target" \
    "${runner[@]}" "$dev" plugin inspect "$d/plugins/hello.wasm"
  "$work/magpie-host" plugin compile --target x86_64-unknown-linux-gnu target/plugins/hello.wasm "$d/plugins/x86.cwasm" >/dev/null
  expect_fail "$target refuses another target's artifact" "x86.cwasm" \
    "${runner[@]}" "$dev" plugin inspect "$d/plugins/x86.cwasm"
  expect_fail "$target has no plugin compile" "no compiler" \
    "${runner[@]}" "$dev" plugin compile --target "$target" target/plugins/hello.wasm "$d/x.cwasm"
done
